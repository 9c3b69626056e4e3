package interop

// Scenario 8: headers of every field type amqp091-go can send come back as the same
// values, and every standard property survives.

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// sameValue compares field values the way amqp091-go decodes them: same Go type, same
// value (times by instant, floats bit for bit so NaN compares).
func sameValue(path string, got, want interface{}) error {
	switch w := want.(type) {
	case nil:
		if got != nil {
			return fmt.Errorf("%s: got %T %#v, want nil (void)", path, got, got)
		}
		return nil
	case time.Time:
		g, ok := got.(time.Time)
		if !ok || !g.Equal(w) {
			return fmt.Errorf("%s: got %T %v, want time %v", path, got, got, w)
		}
		return nil
	case float32:
		g, ok := got.(float32)
		if !ok || math.Float32bits(g) != math.Float32bits(w) {
			return fmt.Errorf("%s: got %T %v, want float32 %v", path, got, got, w)
		}
		return nil
	case float64:
		g, ok := got.(float64)
		if !ok || math.Float64bits(g) != math.Float64bits(w) {
			return fmt.Errorf("%s: got %T %v, want float64 %v", path, got, got, w)
		}
		return nil
	case []byte:
		g, ok := got.([]byte)
		if !ok || !bytes.Equal(g, w) {
			return fmt.Errorf("%s: got %T %#v, want bytes %#v", path, got, got, w)
		}
		return nil
	case []interface{}:
		g, ok := got.([]interface{})
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: got %T %#v, want array %#v", path, got, got, w)
		}
		for i := range w {
			if err := sameValue(fmt.Sprintf("%s[%d]", path, i), g[i], w[i]); err != nil {
				return err
			}
		}
		return nil
	case amqp.Table:
		g, ok := got.(amqp.Table)
		if !ok {
			return fmt.Errorf("%s: got %T %#v, want table", path, got, got)
		}
		return sameTable(path, g, w)
	default:
		if fmt.Sprintf("%T", got) != fmt.Sprintf("%T", want) || got != want {
			return fmt.Errorf("%s: got %T %#v, want %T %#v", path, got, got, want, want)
		}
		return nil
	}
}

func sameTable(path string, got, want amqp.Table) error {
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, ok := got[k]
		if !ok {
			return fmt.Errorf("%s.%s: missing", path, k)
		}
		if err := sameValue(path+"."+k, g, want[k]); err != nil {
			return err
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			return fmt.Errorf("%s.%s: unexpected key (value %#v)", path, k, got[k])
		}
	}
	return nil
}

// headersSentAndWanted: the values sent, and the values expected back. amqp091-go writes Go
// int as a 32-bit signed int ('I') and reads it back as int32, so want differs from sent
// there only. No infinite or NaN floats: RabbitMQ closes the channel with 541
// INTERNAL_ERROR on those (Erlang has no such floats).
func headersSentAndWanted() (sent, want amqp.Table) {
	ts := time.Unix(1700000000, 0).UTC()
	sent = amqp.Table{
		"string":       "héllo wörld ✓",
		"empty-string": "",
		"long-string":  string(bytes.Repeat([]byte("x"), 70000)),
		"int8-min":     int8(math.MinInt8),
		"int8-max":     int8(math.MaxInt8),
		"uint8":        byte(255),
		"int16-min":    int16(math.MinInt16),
		"int16-max":    int16(math.MaxInt16),
		"int32-min":    int32(math.MinInt32),
		"int32-max":    int32(math.MaxInt32),
		"int":          int(-123456),
		"int64-min":    int64(math.MinInt64),
		"int64-max":    int64(math.MaxInt64),
		"float32":      float32(3.25),
		"float32-neg":  float32(-1.5e-30),
		"float64":      float64(-2.5e300),
		"float64-frac": float64(0.1),
		"true":         true,
		"false":        false,
		"timestamp":    ts,
		"decimal":      amqp.Decimal{Scale: 2, Value: -12345},
		"decimal-max":  amqp.Decimal{Scale: 255, Value: math.MaxInt32},
		"bytes":        []byte{0, 1, 2, 0xfe, 0xff},
		"empty-bytes":  []byte{},
		"void":         nil,
		"table": amqp.Table{
			"inner":  "x",
			"n":      int32(7),
			"deeper": amqp.Table{"list": []interface{}{int64(1), "two"}, "void": nil},
		},
		"empty-table": amqp.Table{},
		"array": []interface{}{
			"a", int8(-1), byte(1), int16(2), int32(3), int64(4), float32(5.5), float64(6.5),
			true, false, nil, ts, amqp.Decimal{Scale: 1, Value: 5}, []byte("raw"),
			amqp.Table{"k": "v"}, []interface{}{"nested", []interface{}{}},
		},
		"empty-array": []interface{}{},
	}
	want = amqp.Table{}
	for k, v := range sent {
		want[k] = v
	}
	want["int"] = int32(-123456)
	return sent, want
}

func TestHeaderFieldTypesRoundTrip(t *testing.T) {
	conn := dial(t)
	ch, confirms := confirming(t, conn)
	q := uniq(t, "q")
	declareQueue(t, ch, q)
	sent, want := headersSentAndWanted()
	publishConfirmed(t, ch, confirms, "", q, amqp.Publishing{Headers: sent, Body: []byte("h")})

	// through basic.get
	d := getOne(t, ch, q, false)
	if err := sameTable("headers", d.Headers, want); err != nil {
		t.Fatalf("basic.get: %v", err)
	}
	if err := d.Nack(false, true); err != nil {
		t.Fatal(err)
	}
	// and through basic.deliver after a requeue
	deliveries, err := ch.Consume(q, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	d = recvDelivery(t, deliveries)
	if !d.Redelivered {
		t.Fatal("requeued message not marked redelivered")
	}
	if err := sameTable("headers", d.Headers, want); err != nil {
		t.Fatalf("basic.deliver: %v", err)
	}
}

func TestHeaderTypesInArguments(t *testing.T) {
	// field tables in method arguments: a headers-exchange binding with every type must
	// match a message carrying the same values
	conn := dial(t)
	ch, confirms := confirming(t, conn)
	ex := uniq(t, "ex")
	if err := ch.ExchangeDeclare(ex, "headers", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteExchange(ex) })
	q := uniq(t, "q")
	declareQueue(t, ch, q)
	args := amqp.Table{
		"x-match": "all",
		"s":       "str", "b": int8(-3), "B": byte(200), "h": int16(-300), "i": int32(70000),
		"l": int64(1) << 40, "f": float32(1.25), "d": float64(2.5), "t": true,
		"D": amqp.Decimal{Scale: 3, Value: 1234}, "T": time.Unix(1600000000, 0),
		"x": []byte("bin"), "F": amqp.Table{"a": int32(1)}, "A": []interface{}{"a", int32(1)},
	}
	if err := ch.QueueBind(q, "", ex, false, args); err != nil {
		t.Fatalf("queue.bind with every field type: %v", err)
	}
	headers := amqp.Table{}
	for k, v := range args {
		if k != "x-match" {
			headers[k] = v
		}
	}
	m := text("all-match")
	m.Headers = headers
	publishConfirmed(t, ch, confirms, ex, "", m)
	headers["s"] = "other"
	m = text("one-differs")
	m.Headers = headers
	publishConfirmed(t, ch, confirms, ex, "", m)
	if got := drain(t, ch, q); !equalStrings(got, []string{"all-match"}) {
		t.Fatalf("queue got %q", got)
	}
}

func TestStandardProperties(t *testing.T) {
	conn := dial(t)
	ch, confirms := confirming(t, conn)
	q := uniq(t, "q")
	declareQueue(t, ch, q)
	ts := time.Unix(1712345678, 0)
	full := amqp.Publishing{
		ContentType:     "application/json",
		ContentEncoding: "gzip",
		DeliveryMode:    amqp.Persistent,
		Priority:        7,
		CorrelationId:   "corr-42",
		ReplyTo:         "reply.queue",
		Expiration:      "3600000",
		MessageId:       "msg-0001",
		Timestamp:       ts,
		Type:            "order.created",
		UserId:          "guest",
		AppId:           "warren-interop-go",
		Headers:         amqp.Table{"k": "v"},
		Body:            []byte(`{"a":1}`),
	}
	bare := amqp.Publishing{Body: []byte("bare")}
	publishConfirmed(t, ch, confirms, "", q, full, bare)

	d := getOne(t, ch, q, true)
	type props struct {
		ContentType, ContentEncoding        string
		DeliveryMode, Priority              uint8
		CorrelationId, ReplyTo, Expiration  string
		MessageId                           string
		Timestamp                           int64
		Type, UserId, AppId, Body, Exchange string
		RoutingKey                          string
	}
	got := props{d.ContentType, d.ContentEncoding, d.DeliveryMode, d.Priority, d.CorrelationId,
		d.ReplyTo, d.Expiration, d.MessageId, d.Timestamp.Unix(), d.Type, d.UserId, d.AppId,
		string(d.Body), d.Exchange, d.RoutingKey}
	want := props{"application/json", "gzip", 2, 7, "corr-42", "reply.queue", "3600000",
		"msg-0001", ts.Unix(), "order.created", "guest", "warren-interop-go", `{"a":1}`, "", q}
	if got != want {
		t.Fatalf("properties\n got %+v\nwant %+v", got, want)
	}
	if err := sameTable("headers", d.Headers, amqp.Table{"k": "v"}); err != nil {
		t.Fatal(err)
	}

	// a message without properties comes back without any
	d = getOne(t, ch, q, true)
	got = props{d.ContentType, d.ContentEncoding, d.DeliveryMode, d.Priority, d.CorrelationId,
		d.ReplyTo, d.Expiration, d.MessageId, d.Timestamp.Unix(), d.Type, d.UserId, d.AppId,
		string(d.Body), d.Exchange, d.RoutingKey}
	want = props{Timestamp: time.Time{}.Unix(), Body: "bare", RoutingKey: q}
	if got != want || d.Headers != nil || !d.Timestamp.IsZero() {
		t.Fatalf("bare message properties %+v headers %#v", got, d.Headers)
	}
}

func TestWrongUserIdIsRefused(t *testing.T) {
	conn := dial(t)
	ch := channel(t, conn)
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	q := uniq(t, "q")
	declareQueue(t, ch, q)
	if err := ch.Publish("", q, false, false, amqp.Publishing{UserId: "mallory", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	e := closeError(t, closed, "publish with user_id mallory")
	expectAMQPError(t, e, amqp.PreconditionFailed,
		"PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user was 'guest'")
}
