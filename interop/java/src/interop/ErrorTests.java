package interop;

import static interop.Ctx.assertChannelClose;
import static interop.Ctx.assertConnectionClose;
import static interop.Ctx.awaitShutdown;
import static interop.Ctx.channelError;
import static interop.Ctx.check;
import static interop.Ctx.eq;
import static interop.Util.utf8;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.GetResponse;
import com.rabbitmq.client.ShutdownSignalException;

/** Scenario 10: broker errors with exact reply codes and texts. */
public class ErrorTests {

    /** After a channel error the connection and its other channels keep working. */
    private static void connectionStillUsable(Ctx t, Channel closed) throws Exception {
        check(!closed.isOpen(), "failed channel is closed");
        check(t.conn().isOpen(), "connection is still open");
        Channel ch = t.conn().createChannel();
        String q = t.queue(ch, "after-error");
        ch.queueDelete(q);
        ch.close();
    }

    /** Reply texts are shortstrs: RabbitMQ cuts longer ones to 252 characters plus "...". */
    static String shortstr(String text) {
        return text.length() <= 255 ? text : text.substring(0, 252) + "...";
    }

    @Test("10 errors")
    public void passiveDeclareOfMissingQueue(Ctx t) throws Exception {
        Channel ch = t.channel();
        String q = t.name("missing");
        ShutdownSignalException e = channelError(() -> ch.queueDeclarePassive(q));
        assertChannelClose(e, 404, "NOT_FOUND - no queue '" + q + "' in vhost '/'");
        connectionStillUsable(t, ch);
    }

    @Test("10 errors")
    public void passiveDeclareOfMissingExchange(Ctx t) throws Exception {
        Channel ch = t.channel();
        String x = t.name("missing");
        ShutdownSignalException e = channelError(() -> ch.exchangeDeclarePassive(x));
        assertChannelClose(e, 404, "NOT_FOUND - no exchange '" + x + "' in vhost '/'");
        connectionStillUsable(t, ch);
    }

    @Test("10 errors")
    public void redeclareQueueWithDifferentDurable(Ctx t) throws Exception {
        Channel ch = t.channel();
        String q = t.name("q");
        ch.queueDeclare(q, false, false, true, null);
        ShutdownSignalException e = channelError(() -> ch.queueDeclare(q, true, false, true, null));
        assertChannelClose(e, 406, "PRECONDITION_FAILED - inequivalent arg 'durable' for queue '" + q
                + "' in vhost '/': received 'true' but current is 'false'");
        Channel other = t.channel();
        other.queueDelete(q);
        connectionStillUsable(t, ch);
    }

    @Test("10 errors")
    public void redeclareExchangeWithDifferentType(Ctx t) throws Exception {
        Channel ch = t.channel();
        String x = t.name("x");
        ch.exchangeDeclare(x, "direct", false, true, null);
        ShutdownSignalException e = channelError(() -> ch.exchangeDeclare(x, "fanout", false, true, null));
        assertChannelClose(e, 406, "PRECONDITION_FAILED - inequivalent arg 'type' for exchange '" + x
                + "' in vhost '/': received 'fanout' but current is 'direct'");
        t.channel().exchangeDelete(x);
    }

    @Test("10 errors")
    public void publishToMissingExchange(Ctx t) throws Exception {
        Channel ch = t.channel();
        String x = t.name("missing");
        ch.basicPublish(x, "key", null, utf8("x"));
        assertChannelClose(awaitShutdown(ch), 404, "NOT_FOUND - no exchange '" + x + "' in vhost '/'");
        connectionStillUsable(t, ch);
    }

    @Test("10 errors")
    public void ackWithUnknownDeliveryTag(Ctx t) throws Exception {
        Channel ch = t.channel();
        ch.basicAck(42, false);
        assertChannelClose(awaitShutdown(ch), 406, "PRECONDITION_FAILED - unknown delivery tag 42");
        connectionStillUsable(t, ch);
    }

    @Test("10 errors")
    public void doubleAck(Ctx t) throws Exception {
        Channel ch = Util.confirmChannel(t);
        String q = t.queue(ch, "q");
        Util.publish(ch, "", q, null, "once");
        GetResponse r = ch.basicGet(q, false);
        long tag = r.getEnvelope().getDeliveryTag();
        ch.basicAck(tag, false);
        ch.basicAck(tag, false);
        assertChannelClose(awaitShutdown(ch), 406, "PRECONDITION_FAILED - unknown delivery tag " + tag);
    }

    @Test("10 errors")
    public void reservedExchangePrefix(Ctx t) throws Exception {
        Channel ch = t.channel();
        ShutdownSignalException e = channelError(() -> ch.exchangeDeclare("amq.foo", "direct"));
        assertChannelClose(e, 403, "ACCESS_REFUSED - exchange name 'amq.foo' contains reserved prefix 'amq.*'");
        connectionStillUsable(t, ch);
    }

    @Test("10 errors")
    public void reservedQueuePrefix(Ctx t) throws Exception {
        Channel ch = t.channel();
        ShutdownSignalException e = channelError(() -> ch.queueDeclare("amq.q", false, false, true, null));
        assertChannelClose(e, 403, "ACCESS_REFUSED - queue name 'amq.q' contains reserved prefix 'amq.*'");
    }

    @Test("10 errors")
    public void bindToMissingQueueAndExchange(Ctx t) throws Exception {
        Channel ch = t.channel();
        String q = t.name("missing");
        ShutdownSignalException e = channelError(() -> ch.queueBind(q, "amq.direct", "k"));
        assertChannelClose(e, 404, "NOT_FOUND - no queue '" + q + "' in vhost '/'");
        Channel ch2 = t.channel();
        String real = t.queue(ch2, "q");
        String x = t.name("missing");
        e = channelError(() -> ch2.queueBind(real, x, "k"));
        assertChannelClose(e, 404, "NOT_FOUND - no exchange '" + x + "' in vhost '/'");
    }

    @Test("10 errors")
    public void consumeFromMissingQueue(Ctx t) throws Exception {
        Channel ch = t.channel();
        String q = t.name("missing");
        ShutdownSignalException e = channelError(() -> ch.basicConsume(q, true, new Inbox(ch)));
        assertChannelClose(e, 404, "NOT_FOUND - no queue '" + q + "' in vhost '/'");
    }

    @Test("10 errors")
    public void userIdMustMatchTheLogin(Ctx t) throws Exception {
        Channel ch = t.channel();
        String q = t.queue(ch, "q");
        ch.basicPublish("", q, new AMQP.BasicProperties.Builder().userId("bob").build(), utf8("forged"));
        assertChannelClose(awaitShutdown(ch), 406,
                "PRECONDITION_FAILED - user_id property set to 'bob' but authenticated user was 'guest'");
    }

    @Test("10 errors")
    public void exclusiveQueueOfAnotherConnection(Ctx t) throws Exception {
        Channel owner = t.channel();
        String q = t.queue(owner, "excl");
        Connection other = t.connect();
        Channel ch = other.createChannel();
        String locked = shortstr("RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '" + q
                + "' in vhost '/'. It could be originally declared on another connection or the exclusive"
                + " property value does not match that of the original declaration.");
        assertChannelClose(channelError(() -> ch.basicConsume(q, true, new Inbox(ch))), 405, locked);
        Channel ch2 = other.createChannel();
        assertChannelClose(channelError(() -> ch2.queueDeclare(q, false, true, false, null)), 405, locked);
        Channel ch3 = other.createChannel();
        assertChannelClose(channelError(() -> ch3.queueDeclarePassive(q)), 405, locked);
        Channel ch4 = other.createChannel();
        assertChannelClose(channelError(() -> ch4.queueDelete(q)), 405, locked);
    }

    @Test("10 errors")
    public void reusedConsumerTagIsAConnectionError(Ctx t) throws Exception {
        Connection c = t.connect();
        Channel ch = c.createChannel();
        String q = t.queue(ch, "q");
        ch.basicConsume(q, true, "my-tag", new Inbox(ch));
        ShutdownSignalException e = Ctx.expectShutdown(() -> ch.basicConsume(q, true, "my-tag", new Inbox(ch)));
        check(e.isHardError(), "a connection-level error, got " + Ctx.describe(e));
        assertConnectionClose(e, 530, "NOT_ALLOWED - attempt to reuse consumer tag 'my-tag'");
        check(!c.isOpen(), "connection closed");
    }

    @Test("10 errors")
    public void unknownExchangeTypeIsAConnectionError(Ctx t) throws Exception {
        Connection c = t.connect();
        Channel ch = c.createChannel();
        String x = t.name("x");
        // RabbitMQ 3.13 and 4.x answer with a channel error, 406; 3.12 and older (the Debian
        // oracle) close the connection with 503. warren answers as current RabbitMQ does.
        if ("warren".equals(System.getenv("BROKER_KIND"))) {
            ShutdownSignalException e = channelError(() -> ch.exchangeDeclare(x, "x-no-such-type"));
            assertChannelClose(e, 406, "PRECONDITION_FAILED - unknown exchange type 'x-no-such-type'");
            connectionStillUsable(t, ch);
            return;
        }
        ShutdownSignalException e = Ctx.expectShutdown(() -> ch.exchangeDeclare(x, "x-no-such-type"));
        check(e.isHardError(), "a connection-level error, got " + Ctx.describe(e));
        assertConnectionClose(e, 503, "COMMAND_INVALID - unknown exchange type 'x-no-such-type'");
    }

    @Test("10 errors")
    public void closedChannelRejectsFurtherUse(Ctx t) throws Exception {
        Channel ch = t.channel();
        String q = t.name("missing");
        channelError(() -> ch.queueDeclarePassive(q));
        // the client refuses locally; the close reason is kept
        try {
            ch.queueDeclare();
            throw new AssertionError("a closed channel accepted queue.declare");
        } catch (com.rabbitmq.client.AlreadyClosedException expected) {
            eq(404, Ctx.replyCode(expected), "kept close reason");
        }
    }
}
