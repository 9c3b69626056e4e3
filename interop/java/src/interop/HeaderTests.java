package interop;

import static interop.Ctx.check;
import static interop.Ctx.eq;
import static interop.Util.utf8;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Delivery;
import com.rabbitmq.client.GetResponse;
import com.rabbitmq.client.LongString;
import com.rabbitmq.client.impl.LongStringHelper;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Date;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** Scenario 8: every header field type the Java client writes, and all standard properties. */
public class HeaderTests {

    /** byte[] with value equality, so decoded tables can be compared with equals(). */
    record Bytes(String hex) {}

    /** Strings come back as LongString and byte[] has identity equality: normalise both. */
    static Object norm(Object v) {
        if (v instanceof LongString) return "S:" + v;
        if (v instanceof String) return "S:" + v;
        if (v instanceof byte[]) return new Bytes(HexFormat.of().formatHex((byte[]) v));
        if (v instanceof Object[]) return norm(Arrays.asList((Object[]) v));
        if (v instanceof List) {
            List<Object> out = new ArrayList<>();
            for (Object o : (List<?>) v) out.add(norm(o));
            return out;
        }
        if (v instanceof Map) {
            Map<String, Object> out = new TreeMap<>();
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) out.put(String.valueOf(e.getKey()), norm(e.getValue()));
            return out;
        }
        return v;
    }

    static Map<String, Object> allTypes() {
        Map<String, Object> nested = new LinkedHashMap<>();
        nested.put("inner", "v");
        nested.put("n", 1);
        nested.put("deeper", new LinkedHashMap<>(Map.of("x", 1L << 33, "flag", false)));
        nested.put("nothing", null);

        Map<String, Object> h = new LinkedHashMap<>();
        h.put("string", "hello");
        h.put("utf8", "h\u00e9llo \u2713 \u65e5\u672c");
        h.put("longstr", LongStringHelper.asLongString("a LongString"));
        h.put("empty_string", "");
        h.put("int", 42);
        h.put("int_min", Integer.MIN_VALUE);
        h.put("int_max", Integer.MAX_VALUE);
        h.put("long", 1L << 40);
        h.put("long_min", Long.MIN_VALUE);
        h.put("long_max", Long.MAX_VALUE);
        h.put("short", (short) -1234);
        h.put("short_max", Short.MAX_VALUE);
        h.put("byte", (byte) -7);
        h.put("byte_min", Byte.MIN_VALUE);
        h.put("byte_max", Byte.MAX_VALUE);
        h.put("float", 3.25f);
        h.put("float_neg", -0.15625f);
        h.put("double", Math.PI);
        h.put("double_big", -1.5e300);
        h.put("decimal", new BigDecimal("123.45"));
        h.put("decimal_neg", new BigDecimal("-0.001"));
        h.put("decimal_int", new BigDecimal("7"));
        h.put("decimal_max", new BigDecimal(BigDecimal.valueOf(Integer.MAX_VALUE).unscaledValue(), 10));
        h.put("true", true);
        h.put("false", false);
        h.put("timestamp", new Date(1_700_000_000_000L));
        h.put("table", nested);
        h.put("empty_table", new LinkedHashMap<>());
        h.put("array", Arrays.asList(1, "two", 3.0d, true, null, 5L, List.of("x", "y"), Map.of("k", "v"),
                new byte[] {9, 8}));
        h.put("object_array", new Object[] {(short) 1, (byte) 2});
        h.put("empty_array", List.of());
        h.put("bytes", new byte[] {0, 1, 2, (byte) 0x7f, (byte) 0x80, (byte) 0xff});
        h.put("empty_bytes", new byte[0]);
        h.put("void", null);
        return h;
    }

    @Test("8 headers")
    public void everyHeaderFieldTypeRoundTrips(Ctx t) throws Exception {
        Channel ch = Util.confirmChannel(t);
        String q = t.queue(ch, "q");
        Map<String, Object> sent = allTypes();
        AMQP.BasicProperties props = new AMQP.BasicProperties.Builder().headers(sent).build();
        Util.publish(ch, "", q, props, "typed");
        Inbox in = Inbox.consume(ch, q, true);
        Delivery d = in.next();
        Map<String, Object> got = d.getProperties().getHeaders();
        check(got != null, "headers present");
        eq(sent.keySet().size(), got.size(), "number of headers");
        Map<?, ?> want = (Map<?, ?>) norm(sent);
        Map<?, ?> have = (Map<?, ?>) norm(got);
        for (Object key : want.keySet()) {
            check(have.containsKey(key), "header '" + key + "' missing");
            eq(want.get(key), have.get(key), "header '" + key + "'");
        }
        // types the decoder must produce for each wire type
        check(got.get("string") instanceof LongString, "strings decode as LongString");
        check(got.get("int") instanceof Integer, "int decodes as Integer");
        check(got.get("long") instanceof Long, "long decodes as Long");
        check(got.get("short") instanceof Short, "short decodes as Short");
        check(got.get("byte") instanceof Byte, "byte decodes as Byte");
        check(got.get("float") instanceof Float, "float decodes as Float");
        check(got.get("double") instanceof Double, "double decodes as Double");
        check(got.get("decimal") instanceof BigDecimal, "decimal decodes as BigDecimal");
        check(got.get("timestamp") instanceof Date, "timestamp decodes as Date");
        check(got.get("bytes") instanceof byte[], "byte array decodes as byte[]");
        check(got.containsKey("void") && got.get("void") == null, "void decodes as null");
    }

    @Test("8 headers")
    public void headersSurviveBasicGetToo(Ctx t) throws Exception {
        Channel ch = Util.confirmChannel(t);
        String q = t.queue(ch, "q");
        Map<String, Object> sent = allTypes();
        Util.publish(ch, "", q, new AMQP.BasicProperties.Builder().headers(sent).build(), "typed");
        GetResponse r = ch.basicGet(q, true);
        check(r != null, "basic.get returned the message");
        eq(norm(sent), norm(r.getProps().getHeaders()), "headers via basic.get");
    }

    @Test("8 headers")
    public void allStandardPropertiesRoundTrip(Ctx t) throws Exception {
        Channel ch = Util.confirmChannel(t);
        String q = t.queue(ch, "q");
        Date ts = new Date(1_700_000_123_000L);
        AMQP.BasicProperties sent = new AMQP.BasicProperties.Builder()
                .contentType("application/json")
                .contentEncoding("gzip")
                .headers(Map.of("k", "v"))
                .deliveryMode(2)
                .priority(5)
                .correlationId("corr-42")
                .replyTo("reply.queue")
                .expiration("60000")
                .messageId("msg-0001")
                .timestamp(ts)
                .type("order.created")
                .userId("guest")
                .appId("interop-java")
                .build();
        Util.publish(ch, "", q, sent, "{\"ok\":true}");
        Inbox in = Inbox.consume(ch, q, true);
        Delivery d = in.next();
        AMQP.BasicProperties p = d.getProperties();
        eq("application/json", p.getContentType(), "content_type");
        eq("gzip", p.getContentEncoding(), "content_encoding");
        eq(Map.of("k", "S:v"), norm(p.getHeaders()), "headers");
        eq(2, p.getDeliveryMode(), "delivery_mode");
        eq(5, p.getPriority(), "priority");
        eq("corr-42", p.getCorrelationId(), "correlation_id");
        eq("reply.queue", p.getReplyTo(), "reply_to");
        eq("60000", p.getExpiration(), "expiration");
        eq("msg-0001", p.getMessageId(), "message_id");
        eq(ts, p.getTimestamp(), "timestamp");
        eq("order.created", p.getType(), "type");
        eq("guest", p.getUserId(), "user_id");
        eq("interop-java", p.getAppId(), "app_id");
        eq(null, p.getClusterId(), "cluster_id");
        eq("{\"ok\":true}", Util.str(d.getBody()), "body");
    }

    @Test("8 headers")
    public void absentPropertiesStayAbsent(Ctx t) throws Exception {
        Channel ch = Util.confirmChannel(t);
        String q = t.queue(ch, "q");
        Util.publish(ch, "", q, null, "bare");
        Util.publish(ch, "", q, new AMQP.BasicProperties.Builder().headers(Map.of()).deliveryMode(1).build(), "empty");
        GetResponse bare = ch.basicGet(q, true);
        AMQP.BasicProperties p = bare.getProps();
        for (Object v : new Object[] {p.getContentType(), p.getContentEncoding(), p.getHeaders(), p.getDeliveryMode(),
                p.getPriority(), p.getCorrelationId(), p.getReplyTo(), p.getExpiration(), p.getMessageId(),
                p.getTimestamp(), p.getType(), p.getUserId(), p.getAppId(), p.getClusterId()}) {
            eq(null, v, "property of a message published without properties");
        }
        GetResponse empty = ch.basicGet(q, true);
        eq(Map.of(), empty.getProps().getHeaders(), "empty header table");
        eq(1, empty.getProps().getDeliveryMode(), "delivery_mode 1");
        eq("bare", Util.str(bare.getBody()), "first body");
        eq(utf8("empty").length, empty.getBody().length, "second body length");
    }
}
