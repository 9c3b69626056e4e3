# Measurement helper: see bench/storage/README.md.
import pika, sys, time
port=int(sys.argv[1])
conn = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port))
ch = conn.channel(); ch.basic_qos(prefetch_count=1000)
t=time.time(); n=0
for m,p,b in ch.consume('deep', inactivity_timeout=3):
    if m is None: break
    n+=1
    if n%500==0: ch.basic_ack(m.delivery_tag, multiple=True)
ch.cancel()
print("drained", n, "in", round(time.time()-t,1), "s")
