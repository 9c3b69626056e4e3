package interop;

import static interop.Ctx.assertConnectionClose;
import static interop.Ctx.check;
import static interop.Ctx.eq;

import com.rabbitmq.client.AuthenticationFailureException;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.PossibleAuthenticationFailureException;
import com.rabbitmq.client.ShutdownSignalException;
import java.net.URI;

/** Scenario 1: credentials, vhosts, authentication failures. */
public class ConnectionTests {

    /** A factory built field by field from AMQP_URL (host, port, user, password, vhost "/"). */
    static ConnectionFactory explicitFactory(Ctx t) throws Exception {
        URI uri = new URI(Ctx.url());
        ConnectionFactory f = t.factory();
        f.setHost(uri.getHost());
        f.setPort(uri.getPort());
        f.setUsername("guest");
        f.setPassword("guest");
        f.setVirtualHost("/");
        return f;
    }

    @Test("1 connect")
    public void connectWithCredentialsAndExplicitVhost(Ctx t) throws Exception {
        Connection c = t.track(explicitFactory(t).newConnection("interop-java-explicit"));
        check(c.isOpen(), "connection is open");
        Channel ch = c.createChannel();
        String q = t.queue(ch, "q");
        eq(0, ch.queueDeclarePassive(q).getMessageCount(), "message count of a new queue");
        ch.queueDelete(q);
        c.close();
        check(!c.isOpen(), "connection is closed");
        check(c.getCloseReason().isInitiatedByApplication(), "close initiated by the application");
    }

    @Test("1 connect")
    public void connectWithUriNegotiatesRabbitDefaults(Ctx t) throws Exception {
        Connection c = t.connect();
        // The Java client asks for frame_max 0 (no limit), channel_max 2047 and heartbeat 60;
        // the result is what the broker's tune offered combined with that.
        eq(131072, c.getFrameMax(), "negotiated frame_max");
        eq(2047, c.getChannelMax(), "negotiated channel_max");
        eq(60, c.getHeartbeat(), "negotiated heartbeat");
    }

    @Test("1 connect")
    public void unknownVhostIsRefusedWith530(Ctx t) throws Exception {
        ConnectionFactory f = explicitFactory(t);
        String vhost = t.name("vhost");
        f.setVirtualHost(vhost);
        ShutdownSignalException sse = Ctx.expectShutdown(() -> t.track(f.newConnection()));
        check(sse.isHardError(), "a connection-level error");
        assertConnectionClose(sse, 530, "NOT_ALLOWED - vhost " + vhost + " not found");
    }

    @Test("1 connect")
    public void wrongPasswordIsRefused(Ctx t) throws Exception {
        ConnectionFactory f = explicitFactory(t);
        f.setPassword("not-the-password");
        expectAccessRefused(t, f);
    }

    @Test("1 connect")
    public void unknownUserIsRefused(Ctx t) throws Exception {
        ConnectionFactory f = explicitFactory(t);
        f.setUsername(t.name("user"));
        expectAccessRefused(t, f);
    }

    private static void expectAccessRefused(Ctx t, ConnectionFactory f) throws Exception {
        try {
            t.track(f.newConnection());
            throw new AssertionError("connection with bad credentials succeeded");
        } catch (PossibleAuthenticationFailureException e) {
            // The client raises AuthenticationFailureException (a subclass) only when the
            // broker answered with connection.close 403 instead of just dropping the socket.
            check(e instanceof AuthenticationFailureException,
                    "expected AuthenticationFailureException (connection.close 403), got " + e);
            eq("ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
                    + "For details see the broker logfile.", e.getMessage(), "auth failure text");
        }
    }
}
