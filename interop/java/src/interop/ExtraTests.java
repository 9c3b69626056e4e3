package interop;

import static interop.Ctx.assertChannelClose;
import static interop.Ctx.channelError;
import static interop.Ctx.check;
import static interop.Ctx.eq;
import static interop.Util.drain;
import static interop.Util.publish;
import static interop.Util.ready;
import static interop.Util.str;
import static interop.Util.utf8;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.BlockedListener;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.Delivery;
import com.rabbitmq.client.GetResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/** Further Java-client behaviours: cancel notification, basic.get counts, listeners, tx, misc. */
public class ExtraTests {

    @Test("extra")
    public void consumerIsNotifiedWhenItsQueueIsDeleted(Ctx t) throws Exception {
        Channel ch = t.channel();
        String q = t.name("q");
        ch.queueDeclare(q, false, false, false, null);
        Inbox in = Inbox.consume(ch, q, false);
        eq(1L, ch.consumerCount(q), "consumer count");
        Channel other = t.channel();
        other.queueDelete(q);
        String tag = in.cancelledByBroker.get(Ctx.WAIT_MS, TimeUnit.MILLISECONDS);
        eq(in.tag, tag, "cancelled consumer tag (handleCancel)");
        check(!in.cancelOk.isDone(), "handleCancelOk not called for a broker-side cancel");
        check(ch.isOpen(), "channel stays open after basic.cancel from the broker");
        String q2 = t.queue(ch, "after");
        eq(0L, ch.messageCount(q2), "channel usable after the cancel");
    }

    @Test("extra")
    public void clientAdvertisesCancelNotifyAndBrokerCapabilities(Ctx t) throws Exception {
        Connection c = t.conn();
        @SuppressWarnings("unchecked")
        Map<String, Object> clientCaps = (Map<String, Object>) c.getClientProperties().get("capabilities");
        eq(true, clientCaps.get("consumer_cancel_notify"), "client capability consumer_cancel_notify");
        @SuppressWarnings("unchecked")
        Map<String, Object> caps = (Map<String, Object>) c.getServerProperties().get("capabilities");
        check(caps != null, "server properties carry a capabilities table");
        Map<String, Object> got = new TreeMap<>(caps);
        for (String cap : List.of("publisher_confirms", "exchange_exchange_bindings", "basic.nack",
                "consumer_cancel_notify", "connection.blocked", "consumer_priorities", "authentication_failure_close",
                "per_consumer_qos", "direct_reply_to")) {
            eq(true, got.get(cap), "server capability " + cap);
        }
        for (String key : List.of("product", "version", "platform", "copyright", "information")) {
            check(c.getServerProperties().containsKey(key), "server property " + key);
        }
    }

    @Test("extra")
    public void basicGetReportsRemainingMessageCount(Ctx t) throws Exception {
        Channel ch = Util.confirmChannel(t);
        String q = t.queue(ch, "q");
        eq(null, ch.basicGet(q, false), "basic.get-empty on an empty queue");
        publish(ch, "", q, null, "a", "b", "c", "d");
        eq(4L, ch.messageCount(q), "Channel.messageCount");
        List<Integer> counts = new ArrayList<>();
        List<String> bodies = new ArrayList<>();
        List<Long> tags = new ArrayList<>();
        for (GetResponse r; (r = ch.basicGet(q, false)) != null; ) {
            counts.add(r.getMessageCount());
            bodies.add(str(r.getBody()));
            tags.add(r.getEnvelope().getDeliveryTag());
            eq("", r.getEnvelope().getExchange(), "exchange of a basic.get-ok");
            eq(q, r.getEnvelope().getRoutingKey(), "routing key of a basic.get-ok");
        }
        eq(List.of(3, 2, 1, 0), counts, "message_count of each basic.get-ok");
        eq(List.of("a", "b", "c", "d"), bodies, "bodies in order");
        eq(List.of(1L, 2L, 3L, 4L), tags, "delivery tags");
        eq(0L, ch.messageCount(q), "ready count while all are unacked");
        ch.basicRecover(true);
        GetResponse back = ch.basicGet(q, true);
        check(back != null && back.getEnvelope().isRedeliver(), "basic.recover requeued with redelivered=true");
        eq(3, back.getMessageCount(), "message_count after basic.recover");
        eq("a", str(back.getBody()), "first requeued message");
        eq(3, ch.queuePurge(q).getMessageCount(), "purge count");
    }

    @Test("extra")
    public void blockedListenersDoNotDisturbNormalTraffic(Ctx t) throws Exception {
        Connection c = t.connect();
        @SuppressWarnings("unchecked")
        Map<String, Object> clientCaps = (Map<String, Object>) c.getClientProperties().get("capabilities");
        eq(true, clientCaps.get("connection.blocked"), "client capability connection.blocked");
        AtomicInteger events = new AtomicInteger();
        BlockedListener byCallbacks = c.addBlockedListener(reason -> events.incrementAndGet(),
                () -> events.incrementAndGet());
        BlockedListener byInterface = new BlockedListener() {
            @Override
            public void handleBlocked(String reason) {
                events.incrementAndGet();
            }

            @Override
            public void handleUnblocked() {
                events.incrementAndGet();
            }
        };
        c.addBlockedListener(byInterface);
        Channel ch = c.createChannel();
        ch.confirmSelect();
        String q = t.queue(ch, "q");
        Inbox in = Inbox.consume(ch, q, true);
        for (int i = 0; i < 50; i++) ch.basicPublish("", q, null, utf8("m" + i));
        ch.waitForConfirmsOrDie(Ctx.WAIT_MS);
        List<Delivery> ds = in.next(50);
        eq("m49", str(ds.get(49).getBody()), "last delivery");
        eq(0, events.get(), "no connection.blocked / unblocked without a resource alarm");
        check(c.removeBlockedListener(byCallbacks), "callback listener removed");
        check(c.removeBlockedListener(byInterface), "interface listener removed");
        c.clearBlockedListeners();
        check(c.isOpen(), "connection open");
    }

    @Test("extra")
    public void transactionsCommitAndRollBackPublishesAndAcks(Ctx t) throws Exception {
        Channel ch = t.channel();
        Channel peek = t.channel();
        String q = t.queue(ch, "q");
        ch.txSelect();
        ch.basicPublish("", q, null, utf8("rolled-back-1"));
        ch.basicPublish("", q, null, utf8("rolled-back-2"));
        eq(0, ready(peek, q), "uncommitted publishes are invisible");
        ch.txRollback();
        eq(0, ready(peek, q), "rolled back publishes are discarded");

        ch.basicPublish("", q, null, utf8("c1"));
        ch.basicPublish("", q, null, utf8("c2"));
        ch.basicPublish("", q, null, utf8("c3"));
        eq(0, ready(peek, q), "publishes before commit");
        ch.txCommit();
        eq(3, ready(peek, q), "publishes after commit");

        // acks inside a transaction
        GetResponse r1 = ch.basicGet(q, false);
        eq("c1", str(r1.getBody()), "first message");
        ch.basicAck(r1.getEnvelope().getDeliveryTag(), false);
        ch.txRollback(); // the ack is forgotten; the message stays unacked on this channel
        eq(2, ready(peek, q), "ready after a rolled back ack");
        ch.basicAck(r1.getEnvelope().getDeliveryTag(), false);
        ch.txCommit();
        GetResponse r2 = ch.basicGet(q, false);
        eq("c2", str(r2.getBody()), "second message");
        ch.basicReject(r2.getEnvelope().getDeliveryTag(), true);
        eq(1, ready(peek, q), "reject is not applied before commit");
        ch.txCommit();
        eq(2, ready(peek, q), "reject with requeue applied at commit");
        ch.close(); // nothing unacked left: c1 was acked for good
        eq(List.of("c2", "c3"), drain(peek, q), "queue after the transactions");
    }

    @Test("extra")
    public void txCommitWithoutSelectIsRefused(Ctx t) throws Exception {
        Channel ch = t.channel();
        assertChannelClose(channelError(ch::txCommit), 406, "PRECONDITION_FAILED - channel is not transactional");
        Channel ch2 = t.channel();
        assertChannelClose(channelError(ch2::txRollback), 406, "PRECONDITION_FAILED - channel is not transactional");
        Channel ch3 = t.channel();
        ch3.txSelect();
        assertChannelClose(channelError(ch3::confirmSelect), 406,
                "PRECONDITION_FAILED - cannot switch from tx to confirm mode");
    }

    @Test("extra")
    public void basicCancelStopsDeliveries(Ctx t) throws Exception {
        Channel ch = Util.confirmChannel(t);
        String q = t.queue(ch, "q");
        Inbox in = Inbox.consume(ch, q, true);
        publish(ch, "", q, null, "one");
        eq("one", str(in.next().getBody()), "delivery before cancel");
        ch.basicCancel(in.tag);
        eq(in.tag, in.cancelOk.get(Ctx.WAIT_MS, TimeUnit.MILLISECONDS), "handleCancelOk tag");
        publish(ch, "", q, null, "two");
        in.expectNothing();
        eq(List.of("two"), drain(ch, q), "message stays in the queue after cancel");
    }

    @Test("extra")
    public void serverNamedQueueAndDeleteConditions(Ctx t) throws Exception {
        Channel ch = Util.confirmChannel(t);
        AMQP.Queue.DeclareOk ok = ch.queueDeclare();
        check(ok.getQueue().startsWith("amq.gen-"), "server-named queue: " + ok.getQueue());
        eq(0, ok.getMessageCount(), "message count");
        eq(0, ok.getConsumerCount(), "consumer count");
        String q = ok.getQueue();
        publish(ch, "", q, null, "x");
        assertChannelClose(channelError(() -> ch.queueDelete(q, false, true)), 406,
                "PRECONDITION_FAILED - queue '" + q + "' in vhost '/' not empty");
        Channel ch2 = t.channel();
        ch2.basicQos(1);
        Inbox in = Inbox.consume(ch2, q, false);
        eq("x", str(in.next().getBody()), "held unacked by the consumer");
        Channel pub = Util.confirmChannel(t);
        publish(pub, "", q, null, "y", "z");
        Channel ch3 = t.channel();
        assertChannelClose(channelError(() -> ch3.queueDelete(q, true, false)), 406,
                "PRECONDITION_FAILED - queue '" + q + "' in vhost '/' in use");
        Channel ch4 = t.channel();
        eq(2, ch4.queueDelete(q).getMessageCount(), "delete-ok message count (ready messages only)");
        eq(in.tag, in.cancelledByBroker.get(Ctx.WAIT_MS, TimeUnit.MILLISECONDS), "consumer cancelled by the delete");
    }
}
