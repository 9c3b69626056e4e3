package interop;

import static interop.Ctx.assertConnectionClose;
import static interop.Ctx.check;
import static interop.Ctx.eq;
import static interop.Util.str;
import static interop.Util.utf8;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.Delivery;
import com.rabbitmq.client.GetResponse;
import com.rabbitmq.client.Recoverable;
import com.rabbitmq.client.RecoverableConnection;
import com.rabbitmq.client.RecoveryListener;
import com.rabbitmq.client.ShutdownSignalException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** Scenario 9: durable state across $BROKER_RESTART. */
public class RestartTests {
    static final String FORCED = "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'";

    private static AMQP.BasicProperties persistent(int i) {
        return new AMQP.BasicProperties.Builder().deliveryMode(2).messageId("p" + i).contentType("application/octet-stream")
                .headers(Map.of("index", i, "name", "persistent-" + i)).build();
    }

    @Test("9 restart")
    public void durableQueueAndPersistentMessagesSurviveRestart(Ctx t) throws Exception {
        Connection c1 = t.connect();
        CompletableFuture<ShutdownSignalException> c1Closed = new CompletableFuture<>();
        c1.addShutdownListener(c1Closed::complete);
        Channel ch = c1.createChannel();
        ch.confirmSelect();
        String qd = t.name("durable"), qt = t.name("transient"), xd = t.name("durable-x"), qu = t.name("unacked");
        ch.queueDeclare(qd, true, false, false, null);
        ch.queueDeclare(qt, false, false, false, null);
        ch.queueDeclare(qu, true, false, false, null);
        ch.exchangeDeclare(xd, "direct", true, false, null);
        ch.queueBind(qd, xd, "to-durable");

        List<byte[]> persistentBodies = new ArrayList<>();
        Random rnd = new Random(99);
        for (int i = 0; i < 6; i++) {
            byte[] body = new byte[i == 5 ? 300_000 : 16 + i];
            rnd.nextBytes(body);
            persistentBodies.add(body);
            ch.basicPublish("", qd, persistent(i), body);
            // a transient message in the durable queue: not expected to survive
            ch.basicPublish("", qd, new AMQP.BasicProperties.Builder().deliveryMode(1).build(), utf8("transient-" + i));
        }
        ch.basicPublish("", qt, persistent(0), utf8("in a transient queue"));
        ch.basicPublish("", qu, persistent(0), utf8("delivered before the restart"));
        ch.basicPublish("", qu, persistent(1), utf8("never delivered"));
        ch.waitForConfirmsOrDie(Ctx.WAIT_MS);
        eq(12, ch.queueDeclarePassive(qd).getMessageCount(), "messages in the durable queue before the restart");
        // one message of qu is delivered and left unacked when the broker goes down
        GetResponse held = ch.basicGet(qu, false);
        eq("delivered before the restart", str(held.getBody()), "held message");

        Ctx.restartBroker();
        ShutdownSignalException why = c1Closed.get(Ctx.WAIT_MS, TimeUnit.MILLISECONDS);

        Connection c2 = t.connect();
        Channel ch2 = c2.createChannel();
        eq(6, ch2.queueDeclarePassive(qd).getMessageCount(), "persistent messages after the restart");
        for (int i = 0; i < 6; i++) {
            GetResponse r = ch2.basicGet(qd, false);
            check(r != null, "message " + i + " after the restart");
            check(Arrays.equals(persistentBodies.get(i), r.getBody()), "body " + i + " byte-exact after the restart");
            check(!r.getEnvelope().isRedeliver(), "redelivered=false for never-delivered message " + i);
            eq("p" + i, r.getProps().getMessageId(), "message_id " + i);
            eq(2, r.getProps().getDeliveryMode(), "delivery_mode " + i);
            eq(i, r.getProps().getHeaders().get("index"), "header index " + i);
            eq(5 - i, r.getMessageCount(), "basic.get-ok message_count after message " + i);
            ch2.basicAck(r.getEnvelope().getDeliveryTag(), false);
        }
        eq(null, ch2.basicGet(qd, false), "transient messages are gone");

        // the durable exchange and its binding came back
        ch2.exchangeDeclarePassive(xd);
        ch2.confirmSelect();
        ch2.basicPublish(xd, "to-durable", null, utf8("routed after restart"));
        ch2.waitForConfirmsOrDie(Ctx.WAIT_MS);
        GetResponse routed = ch2.basicGet(qd, true);
        check(routed != null, "binding of the durable exchange survived");
        eq("routed after restart", str(routed.getBody()), "routed body");

        // the unacked message is back; the broker knew it had been delivered
        GetResponse first = ch2.basicGet(qu, true), second = ch2.basicGet(qu, true);
        check(first != null && second != null, "both messages of the unacked queue survived");
        eq("delivered before the restart", str(first.getBody()), "first message of the unacked queue");
        eq(true, first.getEnvelope().isRedeliver(), "redelivered flag of the message delivered before the restart");
        eq("never delivered", str(second.getBody()), "second message of the unacked queue");
        eq(false, second.getEnvelope().isRedeliver(), "redelivered flag of the never-delivered message");

        // the non-durable queue is gone
        Channel ch3 = c2.createChannel();
        Ctx.assertChannelClose(Ctx.channelError(() -> ch3.queueDeclarePassive(qt)), 404,
                "NOT_FOUND - no queue '" + qt + "' in vhost '/'");

        Channel cleanup = c2.createChannel();
        cleanup.queueDelete(qd);
        cleanup.queueDelete(qu);
        cleanup.exchangeDelete(xd);

        // the connection that was open during the restart was told why it was closed
        check(!why.isInitiatedByApplication(), "close not initiated by the application");
        assertConnectionClose(why, 320, FORCED);
    }

    @Test("9 restart")
    public void automaticRecoveryResumesConsumingAfterRestart(Ctx t) throws Exception {
        ConnectionFactory f = t.factory();
        f.setAutomaticRecoveryEnabled(true);
        f.setTopologyRecoveryEnabled(true);
        f.setNetworkRecoveryInterval(500);
        Connection c = t.track(f.newConnection("interop-java-recovery"));
        check(c instanceof RecoverableConnection, "a recoverable connection");
        CompletableFuture<Void> recovered = new CompletableFuture<>();
        ((Recoverable) c).addRecoveryListener(new RecoveryListener() {
            @Override
            public void handleRecovery(Recoverable r) {
                recovered.complete(null);
            }

            @Override
            public void handleRecoveryStarted(Recoverable r) {}
        });
        CompletableFuture<ShutdownSignalException> closed = new CompletableFuture<>();
        c.addShutdownListener(closed::complete);

        Channel ch = c.createChannel();
        String q = t.name("recovering");
        ch.queueDeclare(q, true, false, false, null);
        Channel cons = c.createChannel();
        cons.basicQos(10);
        Inbox in = Inbox.consume(cons, q, false);
        ch.confirmSelect();
        ch.basicPublish("", q, persistent(0), utf8("before"));
        ch.waitForConfirmsOrDie(Ctx.WAIT_MS);
        Delivery d = in.next();
        eq("before", str(d.getBody()), "delivery before the restart");
        cons.basicAck(d.getEnvelope().getDeliveryTag(), false);
        // a second consumer holds one message unacked across the restart
        cons.basicCancel(in.tag);
        in.cancelOk.get(Ctx.WAIT_MS, TimeUnit.MILLISECONDS);
        ch.basicPublish("", q, persistent(1), utf8("across"));
        ch.waitForConfirmsOrDie(Ctx.WAIT_MS);
        Inbox in2 = Inbox.consume(cons, q, false);
        Delivery across0 = in2.next();
        eq("across", str(across0.getBody()), "delivery to the second consumer");
        // leave it unacked: after recovery the broker redelivers it with redelivered=true

        Ctx.restartBroker();
        recovered.get(60, TimeUnit.SECONDS);
        ShutdownSignalException why = closed.get(0, TimeUnit.SECONDS);

        Delivery again = in2.next();
        eq("across", str(again.getBody()), "unacked message redelivered to the recovered consumer");
        check(again.getEnvelope().isRedeliver(), "redelivered=true for a message delivered before the restart");
        cons.basicAck(again.getEnvelope().getDeliveryTag(), false);

        ch.basicPublish("", q, persistent(2), utf8("after"));
        ch.waitForConfirmsOrDie(Ctx.WAIT_MS);
        Delivery after = in2.next();
        eq("after", str(after.getBody()), "delivery after recovery");
        check(!after.getEnvelope().isRedeliver(), "new message is not redelivered");
        cons.basicAck(after.getEnvelope().getDeliveryTag(), false);
        in2.expectNothing();
        ch.queueDelete(q);

        check(!why.isInitiatedByApplication(), "close not initiated by the application");
        assertConnectionClose(why, 320, FORCED);
    }
}
