package interop;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.Method;
import com.rabbitmq.client.ShutdownNotifier;
import com.rabbitmq.client.ShutdownSignalException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** Per-test context: connections (closed after the test), unique names, assertions. */
public final class Ctx {
    /** How long to wait for something that must happen. */
    static final long WAIT_MS = 10_000;
    /** How long to watch for something that must NOT happen. */
    static final long QUIET_MS = 500;

    private final String test;
    private final List<Connection> connections = new ArrayList<>();
    private Connection main;

    Ctx(String test) {
        this.test = test;
    }

    static String url() {
        String url = System.getenv("AMQP_URL");
        if (url == null || url.isEmpty()) throw new IllegalStateException("AMQP_URL is not set");
        return url;
    }

    static String brokerKind() {
        String kind = System.getenv("BROKER_KIND");
        return kind == null ? "unknown" : kind;
    }

    // ---------------------------------------------------------------- connections

    /** A factory for AMQP_URL with automatic recovery off (tests reconnect themselves). */
    ConnectionFactory factory() throws Exception {
        ConnectionFactory f = new ConnectionFactory();
        f.setUri(url());
        f.setAutomaticRecoveryEnabled(false);
        f.setConnectionTimeout(10_000);
        f.setHandshakeTimeout(10_000);
        f.setChannelRpcTimeout((int) WAIT_MS);
        return f;
    }

    Connection connect() throws Exception {
        return track(factory().newConnection("interop-java-" + test));
    }

    Connection track(Connection c) {
        synchronized (connections) {
            connections.add(c);
        }
        return c;
    }

    /** The test's shared connection. */
    Connection conn() throws Exception {
        if (main == null || !main.isOpen()) main = connect();
        return main;
    }

    /** A new channel on the test's shared connection. */
    Channel channel() throws Exception {
        return conn().createChannel();
    }

    void closeAll() {
        List<Connection> all;
        synchronized (connections) {
            all = new ArrayList<>(connections);
            connections.clear();
        }
        for (Connection c : all) {
            try {
                if (c.isOpen()) c.close(2_000);
            } catch (Exception ignored) {
                c.abort(1_000);
            }
        }
    }

    /** Runs the harness's broker restart command and waits for it to finish. */
    static void restartBroker() throws Exception {
        String cmd = System.getenv("BROKER_RESTART");
        if (cmd == null || cmd.isEmpty()) throw new IllegalStateException("BROKER_RESTART is not set");
        Process p = new ProcessBuilder("sh", "-c", cmd).inheritIO().start();
        if (!p.waitFor(180, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("BROKER_RESTART did not finish within 180 s");
        }
        if (p.exitValue() != 0) throw new AssertionError("BROKER_RESTART exited with " + p.exitValue());
    }

    // ---------------------------------------------------------------- names

    /** A name unique to this test run: java.TEST.WHAT.RANDOM */
    String name(String what) {
        return "java." + test + "." + what + "." + UUID.randomUUID().toString().substring(0, 8);
    }

    /** Declares a non-durable exclusive queue (gone with its connection) with a unique name. */
    String queue(Channel ch, String what) throws IOException {
        String q = name(what);
        ch.queueDeclare(q, false, true, false, null);
        return q;
    }

    // ---------------------------------------------------------------- shutdown signals

    /** Runs op, which must fail because the broker closed the channel; returns the signal. */
    static ShutdownSignalException channelError(Op op) throws Exception {
        ShutdownSignalException sse = expectShutdown(op);
        if (sse.isHardError()) throw new AssertionError("expected a channel error, got a connection error: " + describe(sse));
        return sse;
    }

    /** Runs op, which must fail with a ShutdownSignalException (directly or as a cause). */
    static ShutdownSignalException expectShutdown(Op op) throws Exception {
        try {
            op.run();
        } catch (Exception e) {
            for (Throwable t = e; t != null; t = t.getCause()) {
                if (t instanceof ShutdownSignalException) return (ShutdownSignalException) t;
            }
            throw new AssertionError("expected a ShutdownSignalException, got " + e, e);
        }
        throw new AssertionError("expected the operation to fail with a ShutdownSignalException");
    }

    /** Waits until the channel or connection is closed and returns why. */
    static ShutdownSignalException awaitShutdown(ShutdownNotifier n) throws Exception {
        CompletableFuture<ShutdownSignalException> f = new CompletableFuture<>();
        n.addShutdownListener(f::complete);
        if (!n.isOpen() && n.getCloseReason() != null) return n.getCloseReason();
        try {
            return f.get(WAIT_MS, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new AssertionError("not closed within " + WAIT_MS + " ms");
        }
    }

    static int replyCode(ShutdownSignalException sse) {
        Method m = sse.getReason();
        if (m instanceof AMQP.Channel.Close) return ((AMQP.Channel.Close) m).getReplyCode();
        if (m instanceof AMQP.Connection.Close) return ((AMQP.Connection.Close) m).getReplyCode();
        throw new AssertionError("shutdown without a close method: " + describe(sse));
    }

    static String replyText(ShutdownSignalException sse) {
        Method m = sse.getReason();
        if (m instanceof AMQP.Channel.Close) return ((AMQP.Channel.Close) m).getReplyText();
        if (m instanceof AMQP.Connection.Close) return ((AMQP.Connection.Close) m).getReplyText();
        throw new AssertionError("shutdown without a close method: " + describe(sse));
    }

    /** Asserts a channel.close (not connection.close) with this code and text. */
    static void assertChannelClose(ShutdownSignalException sse, int code, String text) {
        if (!(sse.getReason() instanceof AMQP.Channel.Close)) {
            throw new AssertionError("expected channel.close " + code + " '" + text + "', got " + describe(sse));
        }
        eq(code, replyCode(sse), "reply code");
        eq(text, replyText(sse), "reply text");
    }

    /** Asserts a connection.close with this code and text. */
    static void assertConnectionClose(ShutdownSignalException sse, int code, String text) {
        if (!(sse.getReason() instanceof AMQP.Connection.Close)) {
            throw new AssertionError("expected connection.close " + code + " '" + text + "', got " + describe(sse));
        }
        eq(code, replyCode(sse), "reply code");
        eq(text, replyText(sse), "reply text");
    }

    static String describe(ShutdownSignalException sse) {
        return (sse.isHardError() ? "connection" : "channel") + " shutdown, reason="
                + sse.getReason() + ", byApp=" + sse.isInitiatedByApplication() + ", cause=" + sse.getCause();
    }

    // ---------------------------------------------------------------- assertions

    static void eq(Object expected, Object actual, String what) {
        boolean same = (expected instanceof byte[] && actual instanceof byte[])
                ? Arrays.equals((byte[]) expected, (byte[]) actual)
                : Objects.equals(expected, actual);
        if (!same) {
            throw new AssertionError(what + ": expected <" + show(expected) + "> but was <" + show(actual) + ">");
        }
    }

    static void check(boolean cond, String what) {
        if (!cond) throw new AssertionError(what);
    }

    static String show(Object o) {
        if (o == null) return "null";
        if (o instanceof byte[]) {
            byte[] b = (byte[]) o;
            return b.length > 64 ? "byte[" + b.length + "]" : "byte[]" + Arrays.toString(b);
        }
        return o + " (" + o.getClass().getSimpleName() + ")";
    }

    @FunctionalInterface
    interface Op {
        void run() throws Exception;
    }
}
