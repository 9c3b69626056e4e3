# Measurement helper: see bench/storage/README.md.
import pika, sys, os, subprocess, time
port = int(sys.argv[1]); size = int(sys.argv[2]); total = int(sys.argv[3]); batch = int(sys.argv[4]); datadir = sys.argv[5]
conn = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port))
ch = conn.channel()
ch.queue_declare('churn', durable=True)
ch.basic_qos(prefetch_count=500)
body = os.urandom(size)
props = pika.BasicProperties(delivery_mode=2)
sent = 0
def du():
    return int(subprocess.check_output(['du','-sb',datadir]).split()[0])
t0=time.time()
while sent < total:
    for _ in range(batch):
        ch.basic_publish('', 'churn', body, props)
    sent += batch*size
    got = 0
    for m, p, b in ch.consume('churn', inactivity_timeout=5):
        if m is None: break
        got += 1
        if got % 100 == 0 or got == batch:
            ch.basic_ack(m.delivery_tag, multiple=True)
        if got == batch: break
    ch.cancel()
    print(f"{sent/2**20:.0f} MiB through, data dir {du()/2**20:.1f} MiB, {time.time()-t0:.0f}s", flush=True)
conn.close()
