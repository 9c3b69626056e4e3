package interop;

import static interop.Ctx.eq;
import static interop.Util.drain;
import static interop.Util.publish;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Scenario 2: routing on every exchange type; exactly which queues get what. */
public class ExchangeTests {

    private static Map<String, Object> map(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    private static AMQP.BasicProperties headers(Map<String, Object> h) {
        return new AMQP.BasicProperties.Builder().headers(h).build();
    }

    @Test("2 exchanges")
    public void defaultExchangeRoutesByQueueName(Ctx t) throws Exception {
        Channel ch = Util.confirmChannel(t);
        String q1 = t.queue(ch, "q1"), q2 = t.queue(ch, "q2");
        publish(ch, "", q1, null, "one", "two");
        publish(ch, "", q2, null, "three");
        publish(ch, "", t.name("nobody"), null, "lost");
        eq(List.of("one", "two"), drain(ch, q1), "q1");
        eq(List.of("three"), drain(ch, q2), "q2");
    }

    @Test("2 exchanges")
    public void directExchange(Ctx t) throws Exception {
        Channel ch = Util.confirmChannel(t);
        String x = t.name("x");
        ch.exchangeDeclare(x, "direct", false, true, null);
        String qa = t.queue(ch, "qa"), qb = t.queue(ch, "qb"), qab = t.queue(ch, "qab"), qnone = t.queue(ch, "none");
        ch.queueBind(qa, x, "a");
        ch.queueBind(qb, x, "b");
        ch.queueBind(qab, x, "a");
        ch.queueBind(qab, x, "b");
        publish(ch, x, "a", null, "a1");
        publish(ch, x, "b", null, "b1");
        publish(ch, x, "c", null, "c1");
        publish(ch, x, "A", null, "A1");
        publish(ch, x, "a", null, "a2");
        eq(List.of("a1", "a2"), drain(ch, qa), "queue bound to a");
        eq(List.of("b1"), drain(ch, qb), "queue bound to b");
        eq(List.of("a1", "b1", "a2"), drain(ch, qab), "queue bound to a and b (one copy each)");
        eq(List.of(), drain(ch, qnone), "unbound queue");
        ch.exchangeDelete(x);
    }

    @Test("2 exchanges")
    public void fanoutExchange(Ctx t) throws Exception {
        Channel ch = Util.confirmChannel(t);
        String x = t.name("x");
        ch.exchangeDeclare(x, "fanout", false, true, null);
        String q1 = t.queue(ch, "q1"), q2 = t.queue(ch, "q2"), q3 = t.queue(ch, "q3"), qnone = t.queue(ch, "none");
        ch.queueBind(q1, x, "");
        ch.queueBind(q2, x, "ignored-key");
        ch.queueBind(q3, x, "k1");
        ch.queueBind(q3, x, "k2"); // two bindings, still one copy per message
        publish(ch, x, "whatever", null, "m1");
        publish(ch, x, "", null, "m2");
        for (String q : List.of(q1, q2, q3)) eq(List.of("m1", "m2"), drain(ch, q), "fanout queue " + q);
        eq(List.of(), drain(ch, qnone), "unbound queue");
        ch.exchangeDelete(x);
    }

    @Test("2 exchanges")
    public void topicExchangeWildcards(Ctx t) throws Exception {
        Channel ch = Util.confirmChannel(t);
        String x = t.name("x");
        ch.exchangeDeclare(x, "topic", false, true, null);
        String[] patterns = {"stock.*.nyse", "stock.#", "#.eu", "*", "#", "a.#.z", "*.*"};
        Map<String, String> queueOf = new LinkedHashMap<>();
        for (String p : patterns) {
            String q = t.queue(ch, "q");
            ch.queueBind(q, x, p);
            queueOf.put(p, q);
        }
        String[] keys = {"stock.ibm.nyse", "stock.nyse", "stock", "stock.a.b.nyse", "fx.eur.eu", "eu",
            "a.z", "a.b.c.z", "a.b", "stock.ibm.nasdaq", "nyse.stock.ibm", "", "stock..nyse"};
        for (String k : keys) publish(ch, x, k, null, k);
        Map<String, List<String>> expected = new HashMap<>();
        // "stock..nyse" has an empty middle word that "*" matches; an empty key only matches "#"
        expected.put("stock.*.nyse", List.of("stock.ibm.nyse", "stock..nyse"));
        expected.put("stock.#", List.of("stock.ibm.nyse", "stock.nyse", "stock", "stock.a.b.nyse", "stock.ibm.nasdaq",
                "stock..nyse"));
        expected.put("#.eu", List.of("fx.eur.eu", "eu"));
        expected.put("*", List.of("stock", "eu"));
        expected.put("#", List.of(keys));
        expected.put("a.#.z", List.of("a.z", "a.b.c.z"));
        expected.put("*.*", List.of("stock.nyse", "a.z", "a.b"));
        for (String p : patterns) eq(expected.get(p), drain(ch, queueOf.get(p)), "queue bound with '" + p + "'");
        ch.exchangeDelete(x);
    }

    @Test("2 exchanges")
    public void headersExchangeAllAndAny(Ctx t) throws Exception {
        Channel ch = Util.confirmChannel(t);
        String x = t.name("x");
        ch.exchangeDeclare(x, "headers", false, true, null);
        String qall = t.queue(ch, "all"), qany = t.queue(ch, "any"), qdefault = t.queue(ch, "default"),
                qempty = t.queue(ch, "empty");
        ch.queueBind(qall, x, "", map("x-match", "all", "a", 1, "b", "x"));
        ch.queueBind(qany, x, "", map("x-match", "any", "a", 1, "b", "x"));
        ch.queueBind(qdefault, x, "", map("a", 1, "b", "x")); // x-match defaults to all
        ch.queueBind(qempty, x, "", null); // no arguments: matches every message

        publish(ch, x, "", headers(map("a", 1, "b", "x")), "both");
        publish(ch, x, "", headers(map("b", "x", "a", 1, "c", true)), "both+extra");
        publish(ch, x, "", headers(map("a", 1)), "only-a");
        publish(ch, x, "", headers(map("b", "x", "z", 9)), "only-b");
        publish(ch, x, "", headers(map("a", 2, "b", "y")), "wrong-values");
        publish(ch, x, "", null, "no-headers");
        publish(ch, x, "routing-key-ignored", headers(map("a", 1, "b", "x")), "both-with-key");
        // integers of another width compare equal; a string "1" is not the integer 1
        publish(ch, x, "", headers(map("a", 1L, "b", "x")), "a-as-long");
        publish(ch, x, "", headers(map("a", (byte) 1, "b", "x")), "a-as-byte");
        publish(ch, x, "", headers(map("a", "1", "b", "y")), "a-as-string");

        eq(List.of("both", "both+extra", "both-with-key", "a-as-long", "a-as-byte"), drain(ch, qall), "x-match all");
        eq(List.of("both", "both+extra", "only-a", "only-b", "both-with-key", "a-as-long", "a-as-byte"),
                drain(ch, qany), "x-match any");
        eq(List.of("both", "both+extra", "both-with-key", "a-as-long", "a-as-byte"), drain(ch, qdefault),
                "x-match default (all)");
        eq(List.of("both", "both+extra", "only-a", "only-b", "wrong-values", "no-headers", "both-with-key",
                "a-as-long", "a-as-byte", "a-as-string"), drain(ch, qempty), "binding without arguments");
        ch.exchangeDelete(x);
    }

    @Test("2 exchanges")
    public void exchangeToExchangeBinding(Ctx t) throws Exception {
        Channel ch = Util.confirmChannel(t);
        String src = t.name("src"), dst = t.name("dst");
        ch.exchangeDeclare(src, "topic", false, false, null);
        ch.exchangeDeclare(dst, "fanout", false, false, null);
        ch.exchangeBind(dst, src, "logs.#");
        String q = t.queue(ch, "q");
        ch.queueBind(q, dst, "");
        for (String k : List.of("logs.error", "metrics.cpu", "logs")) publish(ch, src, k, null, k);
        eq(List.of("logs.error", "logs"), drain(ch, q), "queue behind exchange-to-exchange binding");
        ch.exchangeUnbind(dst, src, "logs.#");
        publish(ch, src, "logs.error", null, "after-unbind");
        eq(List.of(), drain(ch, q), "after exchange.unbind");
        ch.exchangeDelete(dst);
        ch.exchangeDelete(src);
    }

    @Test("2 exchanges")
    public void autoDeleteExchangeGoesWithItsLastBinding(Ctx t) throws Exception {
        Channel ch = Util.confirmChannel(t);
        String x = t.name("x");
        ch.exchangeDeclare(x, "direct", false, true, null);
        String q1 = t.queue(ch, "q1"), q2 = t.queue(ch, "q2");
        ch.queueBind(q1, x, "k");
        ch.queueBind(q2, x, "k");
        ch.queueUnbind(q1, x, "k");
        ch.exchangeDeclarePassive(x); // one binding left
        publish(ch, x, "k", null, "still-there");
        eq(List.of("still-there"), drain(ch, q2), "queue behind the remaining binding");
        ch.queueUnbind(q2, x, "k");
        Ctx.assertChannelClose(Ctx.channelError(() -> ch.exchangeDeclarePassive(x)), 404,
                "NOT_FOUND - no exchange '" + x + "' in vhost '/'");
    }
}
