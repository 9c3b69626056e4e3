package interop;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.Delivery;
import com.rabbitmq.client.Envelope;
import com.rabbitmq.client.ShutdownSignalException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/** A consumer that queues its deliveries and records cancel / shutdown notifications. */
final class Inbox extends DefaultConsumer {
    final LinkedBlockingQueue<Delivery> deliveries = new LinkedBlockingQueue<>();
    final CompletableFuture<String> cancelledByBroker = new CompletableFuture<>();
    final CompletableFuture<String> cancelOk = new CompletableFuture<>();
    final CompletableFuture<ShutdownSignalException> shutdown = new CompletableFuture<>();
    String tag;

    Inbox(Channel ch) {
        super(ch);
    }

    /** Starts consuming queue on ch. */
    static Inbox consume(Channel ch, String queue, boolean autoAck) throws Exception {
        Inbox in = new Inbox(ch);
        in.tag = ch.basicConsume(queue, autoAck, in);
        return in;
    }

    @Override
    public void handleDelivery(String consumerTag, Envelope env, AMQP.BasicProperties props, byte[] body) {
        deliveries.add(new Delivery(env, props, body));
    }

    @Override
    public void handleCancel(String consumerTag) {
        cancelledByBroker.complete(consumerTag);
    }

    @Override
    public void handleCancelOk(String consumerTag) {
        cancelOk.complete(consumerTag);
    }

    @Override
    public void handleShutdownSignal(String consumerTag, ShutdownSignalException sig) {
        shutdown.complete(sig);
    }

    /** The next delivery; fails if none arrives within Ctx.WAIT_MS. */
    Delivery next() throws InterruptedException {
        Delivery d = deliveries.poll(Ctx.WAIT_MS, TimeUnit.MILLISECONDS);
        if (d == null) throw new AssertionError("no delivery within " + Ctx.WAIT_MS + " ms");
        return d;
    }

    /** The next n deliveries in arrival order. */
    List<Delivery> next(int n) throws InterruptedException {
        List<Delivery> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Delivery d = deliveries.poll(Ctx.WAIT_MS, TimeUnit.MILLISECONDS);
            if (d == null) throw new AssertionError("got " + i + " of " + n + " deliveries within " + Ctx.WAIT_MS + " ms");
            out.add(d);
        }
        return out;
    }

    /** Asserts that nothing (more) is delivered during Ctx.QUIET_MS. */
    void expectNothing() throws InterruptedException {
        Delivery d = deliveries.poll(Ctx.QUIET_MS, TimeUnit.MILLISECONDS);
        if (d != null) {
            throw new AssertionError("unexpected delivery: " + new String(d.getBody()) + " via "
                    + d.getEnvelope().getExchange() + "/" + d.getEnvelope().getRoutingKey());
        }
    }
}
