package interop;

import static interop.Ctx.check;
import static interop.Ctx.eq;
import static interop.Util.drain;
import static interop.Util.publish;
import static interop.Util.ready;
import static interop.Util.str;

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Delivery;
import com.rabbitmq.client.GetResponse;
import java.util.ArrayList;
import java.util.List;

/** Scenarios 3 and 4: prefetch with manual acks; nack and reject with and without requeue. */
public class ConsumeTests {

    private static String[] numbered(String prefix, int n) {
        String[] out = new String[n];
        for (int i = 0; i < n; i++) out[i] = prefix + i;
        return out;
    }

    private static List<String> bodies(List<Delivery> ds) {
        List<String> out = new ArrayList<>();
        for (Delivery d : ds) out.add(str(d.getBody()));
        return out;
    }

    @Test("3 prefetch")
    public void prefetchLimitsUnackedDeliveries(Ctx t) throws Exception {
        Channel pub = Util.confirmChannel(t);
        Channel ch = t.channel();
        String q = t.queue(ch, "q");
        publish(pub, "", q, null, numbered("m", 10));
        ch.basicQos(3);
        Inbox in = Inbox.consume(ch, q, false);

        List<Delivery> first = in.next(3);
        eq(List.of("m0", "m1", "m2"), bodies(first), "first window");
        in.expectNothing();
        eq(7, ready(pub, q), "ready messages while 3 are unacked");
        for (Delivery d : first) check(!d.getEnvelope().isRedeliver(), "first delivery has redelivered=false");

        ch.basicAck(first.get(0).getEnvelope().getDeliveryTag(), false);
        Delivery m3 = in.next();
        eq("m3", str(m3.getBody()), "delivery after one ack");
        in.expectNothing();
        eq(6, ready(pub, q), "ready messages after one ack");

        // multiple=true on m3's tag acks m1, m2 and m3: three more may come
        ch.basicAck(m3.getEnvelope().getDeliveryTag(), true);
        List<Delivery> next = in.next(3);
        eq(List.of("m4", "m5", "m6"), bodies(next), "window after a multiple ack");
        in.expectNothing();
        ch.basicAck(next.get(2).getEnvelope().getDeliveryTag(), true);
        eq(List.of("m7", "m8", "m9"), bodies(in.next(3)), "last window");
        in.expectNothing();
        eq(0, ready(pub, q), "nothing left ready");
    }

    @Test("3 prefetch")
    public void prefetchOneDeliversOneAtATime(Ctx t) throws Exception {
        Channel pub = Util.confirmChannel(t);
        Channel ch = t.channel();
        String q = t.queue(ch, "q");
        publish(pub, "", q, null, numbered("m", 4));
        ch.basicQos(1);
        Inbox in = Inbox.consume(ch, q, false);
        for (int i = 0; i < 4; i++) {
            Delivery d = in.next();
            eq("m" + i, str(d.getBody()), "delivery " + i);
            in.expectNothing();
            eq(3 - i, ready(pub, q), "ready messages with one unacked");
            ch.basicAck(d.getEnvelope().getDeliveryTag(), false);
        }
        in.expectNothing();
    }

    @Test("3 prefetch")
    public void unackedMessagesReturnWhenTheChannelCloses(Ctx t) throws Exception {
        Channel pub = Util.confirmChannel(t);
        Channel ch = t.channel();
        String q = t.queue(ch, "q");
        publish(pub, "", q, null, numbered("m", 3));
        ch.basicQos(2);
        Inbox in = Inbox.consume(ch, q, false);
        List<Delivery> got = in.next(2);
        ch.basicAck(got.get(0).getEnvelope().getDeliveryTag(), false);
        in.next(); // m2
        ch.close();
        // m1 and m2 were unacked: back in the queue, in their original order, redelivered
        List<String> bodies = new ArrayList<>();
        List<Boolean> redelivered = new ArrayList<>();
        for (GetResponse r; (r = pub.basicGet(q, true)) != null; ) {
            bodies.add(str(r.getBody()));
            redelivered.add(r.getEnvelope().isRedeliver());
        }
        eq(List.of("m1", "m2"), bodies, "requeued messages");
        eq(List.of(true, true), redelivered, "redelivered flags");
    }

    @Test("4 nack/reject")
    public void nackWithRequeueRedelivers(Ctx t) throws Exception {
        Channel pub = Util.confirmChannel(t);
        Channel ch = t.channel();
        String q = t.queue(ch, "q");
        publish(pub, "", q, null, "hello");
        Inbox in = Inbox.consume(ch, q, false);
        Delivery d = in.next();
        check(!d.getEnvelope().isRedeliver(), "first delivery has redelivered=false");
        ch.basicNack(d.getEnvelope().getDeliveryTag(), false, true);
        Delivery again = in.next();
        eq("hello", str(again.getBody()), "redelivered body");
        check(again.getEnvelope().isRedeliver(), "redelivered=true after nack with requeue");
        check(again.getEnvelope().getDeliveryTag() > d.getEnvelope().getDeliveryTag(), "a new delivery tag");
        ch.basicAck(again.getEnvelope().getDeliveryTag(), false);
        in.expectNothing();
        eq(0, ready(pub, q), "queue empty after ack");
    }

    @Test("4 nack/reject")
    public void nackWithoutRequeueDrops(Ctx t) throws Exception {
        Channel pub = Util.confirmChannel(t);
        Channel ch = t.channel();
        String q = t.queue(ch, "q");
        publish(pub, "", q, null, "doomed", "kept");
        ch.basicQos(1);
        Inbox in = Inbox.consume(ch, q, false);
        Delivery d = in.next();
        eq("doomed", str(d.getBody()), "first delivery");
        ch.basicNack(d.getEnvelope().getDeliveryTag(), false, false);
        Delivery next = in.next();
        eq("kept", str(next.getBody()), "next delivery");
        check(!next.getEnvelope().isRedeliver(), "kept was never delivered before");
        ch.basicCancel(in.tag);
        in.cancelOk.get(Ctx.WAIT_MS, java.util.concurrent.TimeUnit.MILLISECONDS);
        ch.close(); // "kept" goes back; "doomed" must not
        eq(List.of("kept"), drain(pub, q), "queue after nack without requeue");
    }

    @Test("4 nack/reject")
    public void nackMultipleRequeuesAllInOrder(Ctx t) throws Exception {
        Channel pub = Util.confirmChannel(t);
        Channel ch = t.channel();
        String q = t.queue(ch, "q");
        publish(pub, "", q, null, "a", "b", "c");
        Inbox in = Inbox.consume(ch, q, false);
        List<Delivery> ds = in.next(3);
        ch.basicNack(ds.get(2).getEnvelope().getDeliveryTag(), true, true);
        List<Delivery> again = in.next(3);
        eq(List.of("a", "b", "c"), bodies(again), "requeued order");
        for (Delivery d : again) check(d.getEnvelope().isRedeliver(), "redelivered=true for " + str(d.getBody()));
        ch.basicNack(again.get(2).getEnvelope().getDeliveryTag(), true, false);
        in.expectNothing();
        eq(0, ready(pub, q), "queue empty after nack multiple without requeue");
    }

    @Test("4 nack/reject")
    public void rejectWithRequeueRedelivers(Ctx t) throws Exception {
        Channel pub = Util.confirmChannel(t);
        Channel ch = t.channel();
        String q = t.queue(ch, "q");
        publish(pub, "", q, null, "r1");
        GetResponse r = ch.basicGet(q, false);
        check(r != null, "basic.get returned a message");
        check(!r.getEnvelope().isRedeliver(), "redelivered=false at first");
        ch.basicReject(r.getEnvelope().getDeliveryTag(), true);
        GetResponse again = ch.basicGet(q, false);
        check(again != null, "message is back after reject with requeue");
        eq("r1", str(again.getBody()), "body");
        check(again.getEnvelope().isRedeliver(), "redelivered=true after reject with requeue");
        ch.basicAck(again.getEnvelope().getDeliveryTag(), false);
        eq(null, ch.basicGet(q, false), "queue empty after ack");
    }

    @Test("4 nack/reject")
    public void rejectWithoutRequeueDrops(Ctx t) throws Exception {
        Channel pub = Util.confirmChannel(t);
        Channel ch = t.channel();
        String q = t.queue(ch, "q");
        publish(pub, "", q, null, "r1", "r2");
        Inbox in = Inbox.consume(ch, q, false);
        List<Delivery> ds = in.next(2);
        ch.basicReject(ds.get(0).getEnvelope().getDeliveryTag(), false);
        ch.basicReject(ds.get(1).getEnvelope().getDeliveryTag(), false);
        in.expectNothing();
        eq(0, ready(pub, q), "ready after reject without requeue");
        ch.close();
        eq(null, pub.basicGet(q, true), "nothing comes back when the channel closes");
    }
}
