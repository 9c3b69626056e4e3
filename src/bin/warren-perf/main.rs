//! `warren-perf`: an AMQP 0-9-1 load generator in the spirit of RabbitMQ PerfTest and
//! lavinmqperf.
//!
//! It speaks the protocol itself over plain TCP (no client library) so that the tool stays
//! cheap next to the broker it measures:
//!
//! * every producer and every consumer is a connection of its own with one channel;
//! * producers encode one complete publish (method, content header and body frames) once and,
//!   per message, only patch the 16 bytes of timestamp and sequence in the body; they write
//!   batches of up to 64 publishes (or about 256 KiB) with one `write()`, within the confirm
//!   window (`-c`) and the rate limit (`-r`), while a reader task takes the confirms;
//! * consumers parse the frames by hand from a large read buffer: `basic.deliver`, content
//!   header, body; the first 8 body bytes carry the send time, which gives the end-to-end
//!   latency; acknowledgements are coalesced into one `basic.ack multiple=true` per read.
//!
//! Body layout (at least 16 bytes): `[0..8]` send time in ns since this process's epoch,
//! `[8..10]` a tag of this run (so that messages left over by another process are not taken
//! for latency samples), `[10..12]` the producer id, `[12..16]` the producer's sequence number,
//! all big-endian.
//!
//! With `--client lapin` the same scenarios run through the lapin client library instead
//! (see `lapin_path`), with the same body layout, pacing, counters and report.
//!
//! Example: `warren-perf --uri amqp://guest:guest@127.0.0.1:5672/%2f -x1 -y1 -s16 -z10`.

mod body;
mod consumer;
mod histogram;
mod idle;
mod lapin_path;
mod pace;
mod plan;
mod producer;
mod stats;
mod uri;
mod wire;

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use tokio::task::JoinHandle;

use crate::consumer::{run_consumer, setup_consumer};
use crate::histogram::Histogram;
use crate::plan::{declare_topology, Plan};
use crate::producer::{run_producer, setup_producer, Producer, CLOSE_WAIT_PRODUCER};
use crate::stats::{json_latency, lock, ms, now_ns, rate, summary_of, Shared, Stop, EPOCH};
use crate::uri::{parse_uri, Uri};
use crate::wire::Conn;

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

/// Which AMQP client the producers and consumers use.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    /// The hand-written protocol code of this tool (batched writes, frames parsed in place)
    Lean,
    /// The lapin client library
    Lapin,
}

#[derive(Parser, Debug, Clone)]
#[command(
    name = "warren-perf",
    version,
    about = "AMQP 0-9-1 load generator (PerfTest-like) speaking the protocol over plain TCP"
)]
struct Args {
    /// Broker URI: amqp://user:password@host:port/vhost (percent-encoded)
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    uri: String,
    /// Number of producers (one connection each)
    #[arg(short = 'x', long, default_value_t = 1)]
    producers: usize,
    /// Number of consumers (one connection each)
    #[arg(short = 'y', long, default_value_t = 1)]
    consumers: usize,
    /// Message body size in bytes (at least 16 are sent)
    #[arg(short = 's', long, default_value_t = 16)]
    size: usize,
    /// Seconds to run (0: until --count is reached or Ctrl-C)
    #[arg(short = 'z', long, default_value_t = 0)]
    time: u64,
    /// Messages to publish per producer (0: unlimited); with --consume-only, the consumers
    /// stop after producers x count messages
    #[arg(short = 'C', long, default_value_t = 0)]
    count: u64,
    /// Publish persistent messages (delivery_mode 2)
    #[arg(long)]
    persistent: bool,
    /// Declare durable queues (and exchange). Queues and exchanges that exist already are
    /// used as they are (they are declared passively first)
    #[arg(long)]
    durable: bool,
    /// Publisher confirms with at most N unconfirmed publishes per producer (0: no confirms)
    #[arg(short = 'c', long, default_value_t = 0)]
    confirm: u64,
    /// Prefetch (basic.qos) per consumer (0: none)
    #[arg(short = 'q', long, default_value_t = 0)]
    prefetch: u16,
    /// Acknowledge every N deliveries with basic.ack multiple=true (0: consume with no-ack)
    #[arg(short = 'a', long, default_value_t = 0)]
    ack: u64,
    /// Publishes per second per producer (0: as fast as possible)
    #[arg(short = 'r', long, default_value_t = 0)]
    rate: u64,
    /// Only publish (no consumers)
    #[arg(long, conflicts_with = "consume_only")]
    publish_only: bool,
    /// Only consume (no producers)
    #[arg(long)]
    consume_only: bool,
    /// Queue name (with --queues N or --fanout N: NAME-0 .. NAME-{N-1})
    #[arg(short = 'u', long, default_value = "perf-test")]
    queue: String,
    /// Spread producers and consumers round-robin over N queues
    #[arg(long, default_value_t = 1, conflicts_with = "fanout")]
    queues: usize,
    /// Publish to a fanout exchange NAME-fanout bound to N queues; consumers spread over them
    #[arg(long, default_value_t = 0)]
    fanout: usize,
    /// Purge the queues at start
    #[arg(long)]
    purge: bool,
    /// Also print the summary as one JSON line
    #[arg(long)]
    json: bool,
    /// Instead of a load: open N idle connections (one channel each), hold them for -z
    /// seconds (or until Ctrl-C), then close them; for measuring the broker's memory per
    /// connection
    #[arg(long, default_value_t = 0)]
    idle: usize,
    /// AMQP client for the producers and consumers: lean (hand-written, built so that the
    /// generator is not the bottleneck) or lapin (the lapin library, as an application would)
    #[arg(long, value_enum, default_value_t = Client::Lean)]
    client: Client,
}

/// Producers and consumers connected and ready to start.
enum Ready {
    Lean(Vec<Conn>, Vec<Producer>),
    Lapin(lapin_path::Ready),
}

/// Connects everybody (concurrently), consumers first so that they see the first message.
async fn setup(uri: &Uri, plan: &Arc<Plan>, args: &Arc<Args>) -> Result<Ready, String> {
    if args.client == Client::Lapin {
        return Ok(Ready::Lapin(
            lapin_path::setup(&args.uri, plan, args).await?,
        ));
    }
    let consumer_setups: Vec<JoinHandle<Result<Conn, String>>> = (0..plan.consumers)
        .map(|j| tokio::spawn(setup_consumer(uri.clone(), j, plan.clone(), args.clone())))
        .collect();
    let mut consumers = Vec::new();
    for h in consumer_setups {
        consumers.push(h.await.map_err(|e| format!("consumer setup: {e}"))??);
    }
    let producer_setups: Vec<JoinHandle<Result<Producer, String>>> = (0..plan.producers)
        .map(|i| tokio::spawn(setup_producer(uri.clone(), i, plan.clone(), args.clone())))
        .collect();
    let mut producers = Vec::new();
    for h in producer_setups {
        producers.push(h.await.map_err(|e| format!("producer setup: {e}"))??);
    }
    Ok(Ready::Lean(consumers, producers))
}

// ---------------------------------------------------------------------------------------------
// Monitor and report
// ---------------------------------------------------------------------------------------------

async fn run(args: Args) -> Result<(), String> {
    let uri = parse_uri(&args.uri)?;
    if args.idle > 0 {
        return match args.client {
            Client::Lean => idle::lean(uri, args.idle, args.time).await,
            Client::Lapin => idle::lapin(&args.uri, args.idle, args.time).await,
        };
    }
    let plan = Arc::new(Plan::new(&args)?);
    let args = Arc::new(args);
    let run_tag = {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        ((t ^ (t >> 16) ^ std::process::id()) as u16) | 1
    };
    let sh = Arc::new(Shared {
        stop_publish: Stop::default(),
        stop_all: Stop::default(),
        published: AtomicU64::new(0),
        confirmed: AtomicU64::new(0),
        nacked: AtomicU64::new(0),
        consumed: AtomicU64::new(0),
        writes: AtomicU64::new(0),
        published_to: plan.queues.iter().map(|_| AtomicU64::new(0)).collect(),
        last_publish_ns: AtomicU64::new(0),
        last_confirm_ns: AtomicU64::new(0),
        last_consume_ns: AtomicU64::new(0),
        close_ok_ns: AtomicU64::new(0),
        producers_running: AtomicUsize::new(plan.producers),
        latency: Mutex::new(Histogram::new()),
        confirm_latency: Mutex::new(Histogram::new()),
        fatal: Mutex::new(None),
        run_tag,
    });

    declare_topology(&uri, &plan, &args).await?;

    let ready = setup(&uri, &plan, &args).await?;

    eprintln!(
        "warren-perf: {} producer(s), {} consumer(s), {} queue(s){}, body {} B, {}:{} vhost {:?}{}",
        plan.producers,
        plan.consumers,
        plan.queues.len(),
        if plan.fanout() {
            format!(" behind fanout exchange {:?}", plan.exchange)
        } else {
            String::new()
        },
        plan.size,
        uri.host,
        uri.port,
        uri.vhost,
        if args.client == Client::Lapin {
            ", client lapin"
        } else {
            ""
        }
    );

    let start_ns = now_ns();
    let start = Instant::now();
    let tasks: Vec<JoinHandle<()>> = match ready {
        Ready::Lean(consumers, producers) => {
            let mut tasks = Vec::new();
            for c in consumers {
                tasks.push(tokio::spawn(run_consumer(c, plan.clone(), sh.clone())));
            }
            for p in producers {
                tasks.push(tokio::spawn(run_producer(p, args.clone(), sh.clone())));
            }
            tasks
        }
        Ready::Lapin(ready) => lapin_path::spawn(ready, &plan, &args, &sh),
    };

    // Ctrl-C: stop at once (a second one exits without a summary).
    let interrupted = Arc::new(AtomicBool::new(false));
    tokio::spawn({
        let (interrupted, sh) = (interrupted.clone(), sh.clone());
        async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                if interrupted.swap(true, Ordering::SeqCst) || sh.stop_all.is_set() {
                    std::process::exit(130);
                }
                sh.stop_publish.trigger();
            }
        }
    });

    let consumed_queues = plan.consumed_queues();
    let expected_consumed = || -> u64 {
        if plan.fanout() {
            sh.published.load(Ordering::Relaxed) * consumed_queues.len() as u64
        } else {
            consumed_queues
                .iter()
                .map(|&q| sh.published_to[q].load(Ordering::Relaxed))
                .sum()
        }
    };
    // Consumers without producers here: stop after producers x count messages, if given.
    let consume_target = (plan.producers == 0 && args.count > 0).then(|| {
        let per = if plan.fanout() {
            consumed_queues.len() as u64
        } else {
            1
        };
        args.producers as u64 * args.count * per
    });

    let mut total_latency = Histogram::new();
    let mut total_confirm = Histogram::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut next_report = 1u64;
    let (mut last_pub, mut last_conf, mut last_cons) = (0u64, 0u64, 0u64);
    let mut progress = (0u64, 0u64);
    let mut last_progress = Instant::now();
    let mut draining = false;
    let mut stalled: Option<String> = None;
    loop {
        tick.tick().await;
        let elapsed = start.elapsed();
        let published = sh.published.load(Ordering::Relaxed);
        let confirmed = sh.confirmed.load(Ordering::Relaxed) + sh.nacked.load(Ordering::Relaxed);
        let consumed = sh.consumed.load(Ordering::Relaxed);

        if elapsed.as_secs() >= next_report {
            let interval = {
                let mut shared = lock(&sh.latency);
                let h = shared.clone();
                shared.clear();
                h
            };
            let confirm_interval = {
                let mut shared = lock(&sh.confirm_latency);
                let h = shared.clone();
                shared.clear();
                h
            };
            total_latency.merge(&interval);
            total_confirm.merge(&confirm_interval);
            let mut line = format!("t={next_report}s");
            if plan.producers > 0 {
                let _ = write!(line, " published={}/s", published - last_pub);
            }
            if args.confirm > 0 && plan.producers > 0 {
                let _ = write!(line, " confirmed={}/s", confirmed - last_conf);
            }
            if plan.consumers > 0 {
                let _ = write!(line, " consumed={}/s", consumed - last_cons);
            }
            if let (Some(p50), Some(p99)) = (interval.percentile(0.5), interval.percentile(0.99)) {
                let _ = write!(line, " latency p50={:.2}ms p99={:.2}ms", ms(p50), ms(p99));
            } else if let (Some(p50), Some(p99)) = (
                confirm_interval.percentile(0.5),
                confirm_interval.percentile(0.99),
            ) {
                let _ = write!(
                    line,
                    " confirm-latency p50={:.2}ms p99={:.2}ms",
                    ms(p50),
                    ms(p99)
                );
            }
            println!("{line}");
            (last_pub, last_conf, last_cons) = (published, confirmed, consumed);
            next_report = elapsed.as_secs() + 1;
        }

        if lock(&sh.fatal).is_some() || interrupted.load(Ordering::SeqCst) {
            break;
        }
        if (confirmed, consumed) != progress {
            progress = (confirmed, consumed);
            last_progress = Instant::now();
        }
        let time_over = args.time > 0 && elapsed >= Duration::from_secs(args.time);

        if plan.producers == 0 {
            // Consuming only.
            if time_over {
                break;
            }
            if let Some(target) = consume_target {
                if consumed >= target {
                    break;
                }
                if consumed > 0 && last_progress.elapsed() >= Duration::from_secs(5) {
                    stalled = Some(format!(
                        "no delivery for 5 s: consumed {consumed} of {target} messages"
                    ));
                    break;
                }
            }
            continue;
        }
        if time_over {
            sh.stop_publish.trigger();
        }
        if !draining {
            if sh.producers_running.load(Ordering::SeqCst) > 0 {
                continue;
            }
            draining = true;
            last_progress = Instant::now();
        }
        // Producers are done: wait for the confirms and for the consumers to catch up.
        let confirms_done = args.confirm == 0 || confirmed >= published;
        let expected = expected_consumed();
        let consumers_done = plan.consumers == 0 || consumed >= expected;
        if confirms_done && consumers_done {
            break;
        }
        if last_progress.elapsed() >= Duration::from_secs(5) {
            let mut what = Vec::new();
            if !confirms_done {
                what.push(format!("{confirmed} of {published} publishes confirmed"));
            }
            if !consumers_done {
                what.push(format!("{consumed} of {expected} messages consumed"));
            }
            stalled = Some(format!("no progress for 5 s: {}", what.join(", ")));
            break;
        }
    }
    let end = start.elapsed();

    sh.stop_publish.trigger();
    sh.stop_all.trigger();
    let closing = Instant::now();
    let mut told = false;
    for mut t in tasks {
        loop {
            match tokio::time::timeout(Duration::from_secs(1), &mut t).await {
                Ok(_) => break,
                Err(_) if closing.elapsed() > CLOSE_WAIT_PRODUCER + Duration::from_secs(5) => {
                    t.abort();
                    break;
                }
                Err(_) if !told => {
                    eprintln!(
                        "warren-perf: waiting for the broker to take the last publishes \
                         (connection.close-ok); Ctrl-C to give up"
                    );
                    told = true;
                }
                Err(_) => {}
            }
        }
    }
    let close_wait = closing.elapsed();
    if told {
        eprintln!(
            "warren-perf: connections closed after {:.2} s",
            close_wait.as_secs_f64()
        );
    }
    total_latency.merge(&lock(&sh.latency));
    total_confirm.merge(&lock(&sh.confirm_latency));

    if let Some(msg) = lock(&sh.fatal).take() {
        return Err(msg);
    }
    if let Some(msg) = &stalled {
        eprintln!("warren-perf: warning: {msg}");
    }

    // Summary
    let published = sh.published.load(Ordering::Relaxed);
    let confirmed = sh.confirmed.load(Ordering::Relaxed);
    let nacked = sh.nacked.load(Ordering::Relaxed);
    let consumed = sh.consumed.load(Ordering::Relaxed);
    let writes = sh.writes.load(Ordering::Relaxed);
    let span = |last: &AtomicU64| last.load(Ordering::Relaxed).saturating_sub(start_ns);
    let publish_rate = rate(published, span(&sh.last_publish_ns));
    let confirm_rate = rate(confirmed + nacked, span(&sh.last_confirm_ns));
    let consume_rate = rate(consumed, span(&sh.last_consume_ns));
    let latency = summary_of(&total_latency);
    let confirm_latency = summary_of(&total_confirm);
    let per_write = if writes > 0 {
        published as f64 / writes as f64
    } else {
        0.0
    };

    println!("summary: ran {:.2} s", end.as_secs_f64());
    if plan.producers > 0 {
        println!(
            "  published  {published:>12} msgs  avg {publish_rate:>10.0} msgs/s over {:.2} s",
            span(&sh.last_publish_ns) as f64 / 1e9
        );
    }
    // Publishing without confirms and without consumers here ("publish 1M, then drain"): how
    // fast the broker actually took the messages, up to the close-ok after the last one.
    let close_ok = span(&sh.close_ok_ns);
    let taken_rate = (args.confirm == 0 && plan.producers > 0 && plan.consumers == 0)
        .then(|| rate(published, close_ok))
        .filter(|_| close_ok > 0);
    if let Some(taken_rate) = taken_rate {
        println!(
            "  taken      {published:>12} msgs  avg {taken_rate:>10.0} msgs/s over {:.2} s \
             (until connection.close-ok)",
            close_ok as f64 / 1e9
        );
    }
    if args.confirm > 0 && plan.producers > 0 {
        println!(
            "  confirmed  {confirmed:>12} msgs  avg {confirm_rate:>10.0} msgs/s  (nacked {nacked})"
        );
    }
    if plan.consumers > 0 {
        println!(
            "  consumed   {consumed:>12} msgs  avg {consume_rate:>10.0} msgs/s over {:.2} s",
            span(&sh.last_consume_ns) as f64 / 1e9
        );
    }
    let show = |name: &str, s: Option<[f64; 4]>| match s {
        Some([p50, p95, p99, max]) => {
            println!("  {name}  p50={p50:.3} ms  p95={p95:.3} ms  p99={p99:.3} ms  max={max:.3} ms")
        }
        None => println!("  {name}  n/a"),
    };
    if plan.consumers > 0 {
        show("end-to-end latency", latency);
    }
    if args.confirm > 0 && plan.producers > 0 {
        show("confirm latency   ", confirm_latency);
    }
    // lapin does its own writes: they are not counted.
    let lean = args.client == Client::Lean;
    if plan.producers > 0 && lean {
        println!("  producer writes: {writes} write() calls, {per_write:.1} publishes/write");
    }
    if args.json {
        println!(
            "{{\"publish_rate\":{publish_rate:.1},\"consume_rate\":{consume_rate:.1},\
             \"confirm_rate\":{confirm_rate:.1},\"taken_rate\":{},\"latency_ms\":{},\"confirm_latency_ms\":{},\
             \"published\":{published},\"confirmed\":{confirmed},\"nacked\":{nacked},\
             \"consumed\":{consumed},\"writes\":{},\"publishes_per_write\":{},\
             \"duration_s\":{:.3}}}",
            taken_rate.map_or("null".into(), |r| format!("{r:.1}")),
            json_latency(latency),
            json_latency(confirm_latency),
            if lean { writes.to_string() } else { "null".into() },
            if lean { format!("{per_write:.2}") } else { "null".into() },
            end.as_secs_f64()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    EPOCH.get_or_init(Instant::now);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warren-perf: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(run(args));
    // Tasks stuck on a broker that stopped reading must not hold the exit.
    rt.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("warren-perf: error: {msg}");
            ExitCode::from(1)
        }
    }
}
