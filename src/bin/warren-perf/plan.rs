//! Where the producers publish and the consumers consume, and the declaration of that
//! topology on the broker.

use amq_protocol::protocol::{exchange, queue, AMQPClass};
use amq_protocol::types::FieldTable;

use crate::uri::Uri;
use crate::wire::{Conn, Failure};
use crate::Args;

/// Where the producers publish and the consumers consume, derived from the arguments.
pub(crate) struct Plan {
    pub(crate) queues: Vec<String>,
    /// The fanout exchange, if any ("" is the default exchange).
    pub(crate) exchange: String,
    pub(crate) producers: usize,
    pub(crate) consumers: usize,
    pub(crate) size: usize,
    pub(crate) ack_every: u64,
}

impl Plan {
    pub(crate) fn new(a: &Args) -> Result<Plan, String> {
        let n = if a.fanout > 0 { a.fanout } else { a.queues };
        if n == 0 {
            return Err("--queues must be at least 1".into());
        }
        let queues = if n == 1 && a.fanout == 0 {
            vec![a.queue.clone()]
        } else {
            (0..n).map(|i| format!("{}-{i}", a.queue)).collect()
        };
        let exchange = if a.fanout > 0 {
            format!("{}-fanout", a.queue)
        } else {
            String::new()
        };
        let producers = if a.consume_only { 0 } else { a.producers };
        let consumers = if a.publish_only { 0 } else { a.consumers };
        if producers == 0 && consumers == 0 {
            return Err("nothing to do: no producers and no consumers".into());
        }
        let mut ack_every = a.ack;
        if a.prefetch > 0 && ack_every > u64::from(a.prefetch) {
            // With fewer unacked deliveries allowed than the ack interval, nothing would ever be
            // acknowledged and the consumer would stall.
            eprintln!(
                "warren-perf: -a {} exceeds the prefetch {}; acknowledging every {} instead",
                ack_every, a.prefetch, a.prefetch
            );
            ack_every = u64::from(a.prefetch);
        }
        Ok(Plan {
            queues,
            exchange,
            producers,
            consumers,
            size: a.size.max(16),
            ack_every,
        })
    }

    pub(crate) fn fanout(&self) -> bool {
        !self.exchange.is_empty()
    }

    /// (exchange, routing key, index of the queue it reaches when it reaches only one).
    pub(crate) fn producer_route(&self, i: usize) -> (String, String, Option<usize>) {
        if self.fanout() {
            (self.exchange.clone(), String::new(), None)
        } else {
            let q = i % self.queues.len();
            (String::new(), self.queues[q].clone(), Some(q))
        }
    }

    pub(crate) fn consumer_queue(&self, j: usize) -> usize {
        j % self.queues.len()
    }

    /// Indexes of the queues that have at least one consumer.
    pub(crate) fn consumed_queues(&self) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.consumers)
            .map(|j| self.consumer_queue(j))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

// ---------------------------------------------------------------------------------------------
// Setup: exchange, queues, bindings
// ---------------------------------------------------------------------------------------------

/// Declares the fanout exchange, the queues and the bindings (passively first, so that a run
/// without --durable can use queues a --durable run left behind), purging if asked.
pub(crate) async fn declare_topology(uri: &Uri, plan: &Plan, args: &Args) -> Result<(), String> {
    let mut c = Conn::open(uri, "setup".into()).await?;
    let who = c.who.clone();
    let err = |f: Failure| format!("{who}: {}", f.msg);
    if plan.fanout() {
        let declare = |passive| {
            AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
                exchange: plan.exchange.as_str().into(),
                kind: "fanout".into(),
                passive,
                durable: args.durable,
                auto_delete: false,
                internal: false,
                nowait: false,
                arguments: FieldTable::default(),
            }))
        };
        declare_passive_first(&mut c, declare).await.map_err(err)?;
    }
    for name in &plan.queues {
        let declare = |passive| {
            AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
                queue: name.as_str().into(),
                passive,
                durable: args.durable,
                exclusive: false,
                auto_delete: false,
                nowait: false,
                arguments: FieldTable::default(),
            }))
        };
        declare_passive_first(&mut c, declare).await.map_err(err)?;
        if plan.fanout() {
            c.call(AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
                queue: name.as_str().into(),
                exchange: plan.exchange.as_str().into(),
                routing_key: "".into(),
                nowait: false,
                arguments: FieldTable::default(),
            })))
            .await
            .map_err(err)?;
        }
        if args.purge {
            c.call(AMQPClass::Queue(queue::AMQPMethod::Purge(queue::Purge {
                queue: name.as_str().into(),
                nowait: false,
            })))
            .await
            .map_err(err)?;
        }
    }
    c.close().await;
    Ok(())
}

async fn declare_passive_first(
    c: &mut Conn,
    declare: impl Fn(bool) -> AMQPClass,
) -> Result<(), Failure> {
    match c.call(declare(true)).await {
        Ok(_) => Ok(()),
        Err(f) if f.channel && f.code == 404 => {
            c.open_channel().await?;
            c.call(declare(false)).await.map(|_| ())
        }
        Err(f) => Err(f),
    }
}
