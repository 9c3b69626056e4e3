package interop

// Scenario 5: publisher confirms; scenario 6: mandatory publish to an unroutable key;
// scenario 7: large multi-frame messages.

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestPublisherConfirms(t *testing.T) {
	conn := dial(t)
	ch, confirms := confirming(t, conn)
	q := uniq(t, "q")
	declareQueue(t, ch, q)
	const n = 200
	for i := 1; i <= n; i++ {
		if seq := ch.GetNextPublishSeqNo(); seq != uint64(i) {
			t.Fatalf("next publish seq %d, want %d", seq, i)
		}
		if err := ch.Publish("", q, false, false, text(fmt.Sprintf("m%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	// one ack per message, tags 1..n in order (amqp091-go splits multiple acks)
	for i := 1; i <= n; i++ {
		c := recvConfirm(t, confirms)
		if c.DeliveryTag != uint64(i) || !c.Ack {
			t.Fatalf("confirmation %d: tag %d ack=%v", i, c.DeliveryTag, c.Ack)
		}
	}
	select {
	case c := <-confirms:
		t.Fatalf("extra confirmation %+v", c)
	case <-time.After(quietTime):
	}
	qi, err := ch.QueueDeclarePassive(q, false, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if qi.Messages != n {
		t.Fatalf("queue holds %d messages after %d confirmed publishes", qi.Messages, n)
	}
}

func TestConfirmsForUnroutableAndPersistent(t *testing.T) {
	conn := dial(t)
	ch, confirms := confirming(t, conn)
	q := uniq(t, "q")
	if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteQueue(q) })
	ex := uniq(t, "ex")
	if err := ch.ExchangeDeclare(ex, "fanout", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteExchange(ex) })
	persistent := text("p")
	persistent.DeliveryMode = amqp.Persistent
	publishConfirmed(t, ch, confirms, "", uniq(t, "nobody"), text("unroutable"))
	publishConfirmed(t, ch, confirms, ex, "", text("to an exchange with no binding"))
	publishConfirmed(t, ch, confirms, "", q, persistent, persistent, text("transient"))
	if got := drain(t, ch, q); !equalStrings(got, []string{"p", "p", "transient"}) {
		t.Fatalf("queue got %q", got)
	}
}

func TestConfirmNackOnRejectPublishOverflow(t *testing.T) {
	conn := dial(t)
	ch, confirms := confirming(t, conn)
	q := uniq(t, "q")
	if _, err := ch.QueueDeclare(q, false, true, false, false,
		amqp.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteQueue(q) })
	for _, b := range []string{"kept", "refused"} {
		if err := ch.Publish("", q, false, false, text(b)); err != nil {
			t.Fatal(err)
		}
	}
	if c := recvConfirm(t, confirms); c.DeliveryTag != 1 || !c.Ack {
		t.Fatalf("first publish: %+v, want tag 1 ack", c)
	}
	if c := recvConfirm(t, confirms); c.DeliveryTag != 2 || c.Ack {
		t.Fatalf("second publish over max-length: %+v, want tag 2 nack", c)
	}
	if got := drain(t, ch, q); !equalStrings(got, []string{"kept"}) {
		t.Fatalf("queue got %q", got)
	}
}

func TestMandatoryUnroutableIsReturned(t *testing.T) {
	conn := dial(t)
	ch, confirms := confirming(t, conn)
	returns := ch.NotifyReturn(make(chan amqp.Return, 10))
	ex := uniq(t, "ex")
	if err := ch.ExchangeDeclare(ex, "direct", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteExchange(ex) })
	q := uniq(t, "q")
	declareQueue(t, ch, q)
	if err := ch.QueueBind(q, "bound", ex, false, nil); err != nil {
		t.Fatal(err)
	}

	msg := amqp.Publishing{ContentType: "application/x-test", MessageId: "id-1",
		Headers: amqp.Table{"h": "v"}, Body: []byte("nobody wants me")}
	if err := ch.Publish(ex, "unbound-key", true, false, msg); err != nil {
		t.Fatal(err)
	}
	var r amqp.Return
	select {
	case r = <-returns:
	case <-time.After(waitFor):
		t.Fatal("no basic.return within timeout")
	}
	if r.ReplyCode != 312 || r.ReplyText != "NO_ROUTE" || r.Exchange != ex || r.RoutingKey != "unbound-key" {
		t.Fatalf("basic.return code=%d text=%q exchange=%q key=%q, want 312 NO_ROUTE %q unbound-key",
			r.ReplyCode, r.ReplyText, r.Exchange, r.RoutingKey, ex)
	}
	if string(r.Body) != "nobody wants me" || r.ContentType != "application/x-test" ||
		r.MessageId != "id-1" || r.Headers["h"] != "v" {
		t.Fatalf("returned message body=%q props=%+v", r.Body, r)
	}
	// the returned message is still confirmed (acked), after the return
	if c := recvConfirm(t, confirms); c.DeliveryTag != 1 || !c.Ack {
		t.Fatalf("confirmation %+v, want tag 1 ack", c)
	}

	// mandatory through the default exchange to a missing queue
	missing := uniq(t, "missing")
	if err := ch.Publish("", missing, true, false, text("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case r = <-returns:
	case <-time.After(waitFor):
		t.Fatal("no basic.return within timeout")
	}
	if r.ReplyCode != 312 || r.ReplyText != "NO_ROUTE" || r.Exchange != "" || r.RoutingKey != missing {
		t.Fatalf("basic.return %d %q %q %q", r.ReplyCode, r.ReplyText, r.Exchange, r.RoutingKey)
	}
	if c := recvConfirm(t, confirms); c.DeliveryTag != 2 || !c.Ack {
		t.Fatalf("confirmation %+v, want tag 2 ack", c)
	}

	// a routable mandatory message is delivered, not returned
	publishConfirmed(t, ch, confirms, ex, "bound", text("routed"))
	if err := ch.Publish(ex, "bound", true, false, text("routed-mandatory")); err != nil {
		t.Fatal(err)
	}
	if c := recvConfirm(t, confirms); c.DeliveryTag != 4 || !c.Ack {
		t.Fatalf("confirmation %+v, want tag 4 ack", c)
	}
	select {
	case r := <-returns:
		t.Fatalf("routable message returned: %d %q", r.ReplyCode, r.ReplyText)
	case <-time.After(quietTime):
	}
	if got := drain(t, ch, q); !equalStrings(got, []string{"routed", "routed-mandatory"}) {
		t.Fatalf("queue got %q", got)
	}
}

func TestMandatoryWithoutConfirms(t *testing.T) {
	_, ch := open(t)
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	key := uniq(t, "nobody")
	if err := ch.Publish("amq.direct", key, true, false, text("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-returns:
		if r.ReplyCode != 312 || r.ReplyText != "NO_ROUTE" || r.Exchange != "amq.direct" || r.RoutingKey != key {
			t.Fatalf("basic.return %d %q %q %q", r.ReplyCode, r.ReplyText, r.Exchange, r.RoutingKey)
		}
	case <-time.After(waitFor):
		t.Fatal("no basic.return within timeout")
	}
}

func TestLargeMessages(t *testing.T) {
	conn := dial(t)
	if conn.Config.FrameSize <= 0 || conn.Config.FrameSize > 1<<20 {
		t.Fatalf("negotiated frame size %d", conn.Config.FrameSize)
	}
	ch, confirms := confirming(t, conn)
	q := uniq(t, "q")
	declareQueue(t, ch, q)
	frame := conn.Config.FrameSize - 8 // body bytes per frame
	sizes := []int{1 << 20, 5 << 20, frame, frame + 1, 3*frame - 1, 0}
	var bodies [][]byte
	for _, n := range sizes {
		b := randomBytes(t, n)
		bodies = append(bodies, b)
		publishConfirmed(t, ch, confirms, "", q, amqp.Publishing{ContentType: "application/octet-stream", Body: b})
	}
	// by basic.consume
	deliveries, err := ch.Consume(q, "big", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range bodies {
		d := recvDelivery(t, deliveries)
		if !bytes.Equal(d.Body, want) {
			t.Fatalf("message %d (%d bytes): got %d bytes, not byte-exact", i, sizes[i], len(d.Body))
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.Cancel("big", false); err != nil {
		t.Fatal(err)
	}
	// and by basic.get, with a nack/requeue round trip
	publishConfirmed(t, ch, confirms, "", q, amqp.Publishing{Body: bodies[1]})
	d := getOne(t, ch, q, false)
	if !bytes.Equal(d.Body, bodies[1]) || d.Redelivered {
		t.Fatalf("basic.get: %d bytes redelivered=%v", len(d.Body), d.Redelivered)
	}
	if err := d.Nack(false, true); err != nil {
		t.Fatal(err)
	}
	d = getOne(t, ch, q, true)
	if !bytes.Equal(d.Body, bodies[1]) || !d.Redelivered {
		t.Fatalf("basic.get after requeue: %d bytes redelivered=%v", len(d.Body), d.Redelivered)
	}
	expectEmpty(t, ch, q)
}
