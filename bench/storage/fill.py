# Measurement helper: see bench/storage/README.md.
import pika, sys, os, time
port=int(sys.argv[1]); n=int(sys.argv[2]); size=int(sys.argv[3])
conn = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port))
ch = conn.channel()
ch.queue_declare('deep', durable=True)
body = os.urandom(size); props = pika.BasicProperties(delivery_mode=2)
t=time.time()
for i in range(n):
    ch.basic_publish('', 'deep', body, props)
while ch.queue_declare('deep', passive=True).method.message_count < n:
    time.sleep(0.2)
print("published", n, "in", round(time.time()-t,1), "s")
