package interop

// Scenario 2: declare, bind and publish on every exchange type, and check exactly which
// queues receive what.

import (
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

type binding struct {
	queue, key string
	args       amqp.Table
}

// routeCase declares an exchange of the given kind and one queue per name in queues,
// binds them, publishes each message (routing key + headers) with confirms and then
// checks that every queue holds exactly the bodies listed in want, in publish order.
func routeCase(t *testing.T, kind string, queues []string, bindings []binding,
	publish []amqp.Publishing, keys []string, want map[string][]string) {
	t.Helper()
	conn := dial(t)
	ch, confirms := confirming(t, conn)
	ex := uniq(t, kind)
	if err := ch.ExchangeDeclare(ex, kind, false, false, false, false, nil); err != nil {
		t.Fatalf("exchange.declare %s (%s): %v", ex, kind, err)
	}
	t.Cleanup(func() { deleteExchange(ex) })
	names := map[string]string{}
	for _, q := range queues {
		names[q] = uniq(t, q)
		declareQueue(t, ch, names[q])
	}
	for _, b := range bindings {
		if err := ch.QueueBind(names[b.queue], b.key, ex, false, b.args); err != nil {
			t.Fatalf("queue.bind %s %q: %v", b.queue, b.key, err)
		}
	}
	for i, m := range publish {
		publishConfirmed(t, ch, confirms, ex, keys[i], m)
	}
	for _, q := range queues {
		got := drain(t, ch, names[q])
		if !equalStrings(got, want[q]) {
			t.Errorf("queue %s got %q, want %q", q, got, want[q])
		}
	}
}

func TestDirectExchange(t *testing.T) {
	routeCase(t, "direct",
		[]string{"q1", "q2", "q3"},
		[]binding{{"q1", "red", nil}, {"q2", "green", nil}, {"q3", "red", nil}, {"q3", "blue", nil}},
		[]amqp.Publishing{text("m-red"), text("m-green"), text("m-blue"), text("m-none"), text("m-RED")},
		[]string{"red", "green", "blue", "yellow", "RED"},
		map[string][]string{
			"q1": {"m-red"},
			"q2": {"m-green"},
			"q3": {"m-red", "m-blue"},
		})
}

func TestDefaultExchangeRoutesByQueueName(t *testing.T) {
	conn := dial(t)
	ch, confirms := confirming(t, conn)
	q1, q2 := uniq(t, "q1"), uniq(t, "q2")
	declareQueue(t, ch, q1)
	declareQueue(t, ch, q2)
	publishConfirmed(t, ch, confirms, "", q1, text("one"))
	publishConfirmed(t, ch, confirms, "", q2, text("two"))
	publishConfirmed(t, ch, confirms, "", uniq(t, "nobody"), text("lost"))
	if got := drain(t, ch, q1); !equalStrings(got, []string{"one"}) {
		t.Errorf("q1 got %q", got)
	}
	if got := drain(t, ch, q2); !equalStrings(got, []string{"two"}) {
		t.Errorf("q2 got %q", got)
	}
}

func TestFanoutExchange(t *testing.T) {
	routeCase(t, "fanout",
		[]string{"q1", "q2", "q3", "unbound"},
		[]binding{{"q1", "", nil}, {"q2", "ignored-key", nil}, {"q3", "#", nil}},
		[]amqp.Publishing{text("a"), text("b"), text("c")},
		[]string{"", "anything", "x.y.z"},
		map[string][]string{
			"q1": {"a", "b", "c"},
			"q2": {"a", "b", "c"},
			"q3": {"a", "b", "c"},
		})
}

func TestTopicExchange(t *testing.T) {
	keys := []string{
		"stock.usd.nyse", "stock.eur", "stock", "stock.usd.nyse.extra", "quote.usd.nyse",
		"a.b.c", "", "usd", "x.usd", ".usd",
	}
	var msgs []amqp.Publishing
	for _, k := range keys {
		msgs = append(msgs, text("key="+k))
	}
	routeCase(t, "topic",
		[]string{"star", "hash", "all", "mid", "exact", "hashtail", "stars"},
		[]binding{
			{"star", "stock.*.nyse", nil}, // one word in the middle
			{"hash", "stock.#", nil},      // zero or more words after stock
			{"all", "#", nil},             // everything
			{"mid", "*.usd.#", nil},       // any first word, then usd, then anything
			{"exact", "a.b.c", nil},       // no wildcard
			{"hashtail", "#.usd", nil},    // ends in usd
			{"stars", "*.*", nil},         // exactly two words
		},
		msgs, keys,
		map[string][]string{
			"star":     {"key=stock.usd.nyse"},
			"hash":     {"key=stock.usd.nyse", "key=stock.eur", "key=stock", "key=stock.usd.nyse.extra"},
			"all":      prefixAll("key=", keys),
			"mid":      {"key=stock.usd.nyse", "key=stock.usd.nyse.extra", "key=quote.usd.nyse", "key=x.usd", "key=.usd"},
			"exact":    {"key=a.b.c"},
			"hashtail": {"key=usd", "key=x.usd", "key=.usd"},
			"stars":    {"key=stock.eur", "key=x.usd", "key=.usd"},
		})
}

func prefixAll(p string, xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = p + x
	}
	return out
}

func TestHeadersExchange(t *testing.T) {
	type msg struct {
		body    string
		headers amqp.Table
	}
	msgs := []msg{
		{"pdf-report", amqp.Table{"format": "pdf", "type": "report"}},
		{"pdf-only", amqp.Table{"format": "pdf"}},
		{"report-only", amqp.Table{"type": "report"}},
		{"zip-log", amqp.Table{"format": "zip", "type": "log"}},
		{"pdf-report-extra", amqp.Table{"format": "pdf", "type": "report", "extra": int32(1)}},
		{"no-headers", nil},
		{"pdf-wrong-type", amqp.Table{"format": "pdf", "type": "invoice"}},
		{"int-match", amqp.Table{"n": int32(42)}},
		{"int-as-long", amqp.Table{"n": int64(42)}},
	}
	var pubs []amqp.Publishing
	var keys []string
	for _, m := range msgs {
		p := text(m.body)
		p.Headers = m.headers
		pubs = append(pubs, p)
		keys = append(keys, "routing-key-is-ignored")
	}
	routeCase(t, "headers",
		[]string{"all", "any", "none", "exists", "int", "default"},
		[]binding{
			{"all", "", amqp.Table{"x-match": "all", "format": "pdf", "type": "report"}},
			{"any", "", amqp.Table{"x-match": "any", "format": "pdf", "type": "report"}},
			{"exists", "", amqp.Table{"x-match": "all", "extra": int32(1)}},
			{"int", "", amqp.Table{"x-match": "any", "n": int32(42)}},
			// without x-match a headers binding means all
			{"default", "", amqp.Table{"format": "zip", "type": "log"}},
			// an empty all-binding matches every message
			{"none", "", amqp.Table{"x-match": "all"}},
		},
		pubs, keys,
		map[string][]string{
			"all":     {"pdf-report", "pdf-report-extra"},
			"any":     {"pdf-report", "pdf-only", "report-only", "pdf-report-extra", "pdf-wrong-type"},
			"exists":  {"pdf-report-extra"},
			"int":     {"int-match", "int-as-long"}, // values compare as numbers, across widths
			"default": {"zip-log"},
			"none":    bodiesOf(msgs, func(m msg) string { return m.body }),
		})
}

func bodiesOf[T any](xs []T, body func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = body(x)
	}
	return out
}
