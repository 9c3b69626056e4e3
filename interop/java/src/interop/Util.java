package interop;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.GetResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** Publishing and draining helpers shared by the suites. */
final class Util {
    private Util() {}

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static String str(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }

    /** A channel in confirm mode. */
    static Channel confirmChannel(Ctx t) throws Exception {
        Channel ch = t.channel();
        ch.confirmSelect();
        return ch;
    }

    /** Publishes the bodies on a confirm-mode channel and waits until all are confirmed. */
    static void publish(Channel ch, String exchange, String key, AMQP.BasicProperties props, String... bodies)
            throws Exception {
        for (String b : bodies) ch.basicPublish(exchange, key, props, utf8(b));
        ch.waitForConfirmsOrDie(Ctx.WAIT_MS);
    }

    /** Fetches (auto-ack) everything the queue holds, in order. */
    static List<String> drain(Channel ch, String queue) throws Exception {
        List<String> out = new ArrayList<>();
        for (GetResponse r; (r = ch.basicGet(queue, true)) != null; ) out.add(str(r.getBody()));
        return out;
    }

    static int ready(Channel ch, String queue) throws Exception {
        return ch.queueDeclarePassive(queue).getMessageCount();
    }
}
