package interop;

import static interop.Ctx.check;
import static interop.Ctx.eq;
import static interop.Util.drain;
import static interop.Util.ready;
import static interop.Util.str;
import static interop.Util.utf8;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.ConfirmListener;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.Delivery;
import com.rabbitmq.client.GetResponse;
import com.rabbitmq.client.ReturnListener;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/** Scenarios 5, 6 and 7: publisher confirms, mandatory returns, large messages. */
public class PublishTests {

    /** Records acks and nacks; multiple=true acks cover every outstanding lower tag. */
    static final class Confirms implements ConfirmListener {
        final SortedSet<Long> outstanding = Collections.synchronizedSortedSet(new TreeSet<>());
        final List<Long> acked = Collections.synchronizedList(new ArrayList<>());
        final List<Long> nacked = Collections.synchronizedList(new ArrayList<>());
        final List<String> events;

        Confirms(List<String> events) {
            this.events = events;
        }

        private List<Long> settle(long tag, boolean multiple) {
            List<Long> done = new ArrayList<>();
            synchronized (outstanding) {
                if (multiple) {
                    done.addAll(outstanding.headSet(tag + 1));
                    outstanding.headSet(tag + 1).clear();
                } else if (outstanding.remove(tag)) {
                    done.add(tag);
                }
            }
            return done;
        }

        @Override
        public void handleAck(long tag, boolean multiple) {
            List<Long> done = settle(tag, multiple);
            acked.addAll(done);
            if (events != null) for (long d : done) events.add("ack:" + d);
        }

        @Override
        public void handleNack(long tag, boolean multiple) {
            List<Long> done = settle(tag, multiple);
            nacked.addAll(done);
            if (events != null) for (long d : done) events.add("nack:" + d);
        }
    }

    @Test("5 confirms")
    public void confirmsAckEveryRoutedMessage(Ctx t) throws Exception {
        Channel ch = t.channel();
        String q = t.queue(ch, "q");
        ch.confirmSelect();
        Confirms c = new Confirms(null);
        ch.addConfirmListener(c);
        int n = 200;
        for (int i = 0; i < n; i++) {
            long seq = ch.getNextPublishSeqNo();
            eq((long) i + 1, seq, "next publish sequence number");
            c.outstanding.add(seq);
            ch.basicPublish("", q, MessagePropertiesPersistent.INSTANCE, utf8("m" + i));
        }
        ch.waitForConfirmsOrDie(Ctx.WAIT_MS);
        eq(0, c.outstanding.size(), "unconfirmed after waitForConfirmsOrDie");
        eq(List.of(), c.nacked, "nacks");
        List<Long> sorted = new ArrayList<>(c.acked);
        Collections.sort(sorted);
        List<Long> expected = new ArrayList<>();
        for (long i = 1; i <= n; i++) expected.add(i);
        eq(expected, sorted, "acked sequence numbers");
        eq(n, ready(ch, q), "messages in the queue");
    }

    @Test("5 confirms")
    public void confirmsAlsoAckUnroutableMessages(Ctx t) throws Exception {
        Channel ch = t.channel();
        ch.confirmSelect();
        Confirms c = new Confirms(null);
        ch.addConfirmListener(c);
        for (int i = 0; i < 5; i++) {
            c.outstanding.add(ch.getNextPublishSeqNo());
            ch.basicPublish("", t.name("nowhere"), null, utf8("x"));
        }
        check(ch.waitForConfirms(Ctx.WAIT_MS), "waitForConfirms is true (no nacks)");
        eq(5, c.acked.size(), "acks for unroutable, non-mandatory messages");
        eq(0, c.nacked.size(), "nacks");
    }

    @Test("5 confirms")
    public void confirmSelectIsIdempotentAndTxIsRefused(Ctx t) throws Exception {
        Channel ch = t.channel();
        ch.confirmSelect();
        ch.confirmSelect();
        String q = t.queue(ch, "q");
        ch.basicPublish("", q, null, utf8("x"));
        ch.waitForConfirmsOrDie(Ctx.WAIT_MS);
        Ctx.assertChannelClose(Ctx.channelError(ch::txSelect), 406,
                "PRECONDITION_FAILED - cannot switch from confirm to tx mode");
    }

    /** Collects basic.return frames in arrival order (plus confirm events when shared). */
    static final class Returns implements ReturnListener {
        final LinkedBlockingQueue<Object[]> returns = new LinkedBlockingQueue<>();
        final List<String> events;

        Returns(List<String> events) {
            this.events = events;
        }

        @Override
        public void handleReturn(int code, String text, String exchange, String key, AMQP.BasicProperties props,
                byte[] body) {
            returns.add(new Object[] {code, text, exchange, key, props, body});
            if (events != null) events.add("return:" + str(body));
        }

        Object[] next() throws InterruptedException {
            Object[] r = returns.poll(Ctx.WAIT_MS, TimeUnit.MILLISECONDS);
            if (r == null) throw new AssertionError("no basic.return within " + Ctx.WAIT_MS + " ms");
            return r;
        }
    }

    @Test("6 mandatory")
    public void mandatoryUnroutableIsReturnedWithNoRoute(Ctx t) throws Exception {
        Channel ch = t.channel();
        Returns r = new Returns(null);
        ch.addReturnListener(r);
        String key = t.name("unroutable");
        AMQP.BasicProperties props = new AMQP.BasicProperties.Builder()
                .contentType("text/plain").messageId("mid-1").headers(java.util.Map.of("h", "v")).build();
        ch.basicPublish("", key, true, props, utf8("bounce"));
        Object[] ret = r.next();
        eq(312, ret[0], "reply code");
        eq("NO_ROUTE", ret[1], "reply text");
        eq("", ret[2], "exchange");
        eq(key, ret[3], "routing key");
        AMQP.BasicProperties back = (AMQP.BasicProperties) ret[4];
        eq("text/plain", back.getContentType(), "returned content_type");
        eq("mid-1", back.getMessageId(), "returned message_id");
        eq("v", String.valueOf(back.getHeaders().get("h")), "returned header");
        eq("bounce", str((byte[]) ret[5]), "returned body");
    }

    @Test("6 mandatory")
    public void mandatoryToExchangeWithoutBindingsIsReturned(Ctx t) throws Exception {
        Channel ch = t.channel();
        String x = t.name("x");
        ch.exchangeDeclare(x, "direct", false, true, null);
        String q = t.queue(ch, "q");
        ch.queueBind(q, x, "bound");
        ch.confirmSelect();
        List<String> events = Collections.synchronizedList(new ArrayList<>());
        Returns r = new Returns(events);
        ch.addReturnListener(r);
        Confirms c = new Confirms(events);
        ch.addConfirmListener(c);
        c.outstanding.add(ch.getNextPublishSeqNo());
        ch.basicPublish(x, "unbound", true, null, utf8("lost"));
        c.outstanding.add(ch.getNextPublishSeqNo());
        ch.basicPublish(x, "bound", true, null, utf8("kept"));
        ch.waitForConfirmsOrDie(Ctx.WAIT_MS);
        Object[] ret = r.next();
        eq(312, ret[0], "reply code");
        eq("NO_ROUTE", ret[1], "reply text");
        eq(x, ret[2], "exchange");
        eq("unbound", ret[3], "routing key");
        eq("lost", str((byte[]) ret[5]), "returned body");
        check(r.returns.poll(Ctx.QUIET_MS, TimeUnit.MILLISECONDS) == null, "the routed message is not returned");
        // the return of a message precedes its confirm
        eq(List.of("return:lost", "ack:1", "ack:2"), new ArrayList<>(events), "return before confirms, in order");
        eq(List.of("kept"), drain(ch, q), "routed message");
    }

    @Test("6 mandatory")
    public void nonMandatoryUnroutableIsDroppedSilently(Ctx t) throws Exception {
        Channel ch = Util.confirmChannel(t);
        Returns r = new Returns(null);
        ch.addReturnListener(r);
        ch.basicPublish("", t.name("nowhere"), false, null, utf8("dropped"));
        ch.waitForConfirmsOrDie(Ctx.WAIT_MS);
        check(r.returns.poll(Ctx.QUIET_MS, TimeUnit.MILLISECONDS) == null, "no basic.return without mandatory");
        check(ch.isOpen(), "channel still open");
    }

    private static byte[] randomBody(int size, long seed) {
        byte[] b = new byte[size];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static void largeRoundTrip(Ctx t, Connection conn) throws Exception {
        Channel ch = conn.createChannel();
        ch.confirmSelect();
        String q = t.queue(ch, "q");
        int[] sizes = {1 << 20, 5 << 20, 131072 - 8, 131072 - 7, 131072, 0, 1};
        List<byte[]> sent = new ArrayList<>();
        for (int i = 0; i < sizes.length; i++) {
            byte[] body = randomBody(sizes[i], 1234 + i);
            sent.add(body);
            ch.basicPublish("", q, null, body);
        }
        ch.waitForConfirmsOrDie(30_000);
        // first half by consumer, second by basic.get
        Channel cons = conn.createChannel();
        cons.basicQos(2);
        Inbox in = Inbox.consume(cons, q, false);
        for (int i = 0; i < 3; i++) {
            Delivery d = in.next();
            eq(sent.get(i).length, d.getBody().length, "body size of message " + i);
            check(java.util.Arrays.equals(sent.get(i), d.getBody()), "body of message " + i + " is byte-exact");
            cons.basicAck(d.getEnvelope().getDeliveryTag(), false);
        }
        cons.basicCancel(in.tag);
        in.cancelOk.get(Ctx.WAIT_MS, TimeUnit.MILLISECONDS);
        cons.close();
        for (int i = 3; i < sizes.length; i++) {
            GetResponse r = ch.basicGet(q, true);
            check(r != null, "basic.get of message " + i);
            eq(sent.get(i).length, r.getBody().length, "body size of message " + i);
            check(java.util.Arrays.equals(sent.get(i), r.getBody()), "body of message " + i + " is byte-exact");
        }
        eq(null, ch.basicGet(q, true), "queue empty");
    }

    @Test("7 large")
    public void largeMessagesArriveByteExact(Ctx t) throws Exception {
        largeRoundTrip(t, t.conn());
    }

    @Test("7 large")
    public void largeMessagesWithSmallFrameMax(Ctx t) throws Exception {
        ConnectionFactory f = t.factory();
        f.setRequestedFrameMax(4096);
        Connection c = t.track(f.newConnection());
        eq(4096, c.getFrameMax(), "negotiated frame_max");
        largeRoundTrip(t, c);
    }

    /** MessageProperties.PERSISTENT_BASIC without the deprecated-constant import noise. */
    static final class MessagePropertiesPersistent {
        static final AMQP.BasicProperties INSTANCE = new AMQP.BasicProperties.Builder().deliveryMode(2).build();
    }
}
