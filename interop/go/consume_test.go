package interop

// Scenario 3: prefetch (basic.qos) with manual acks; scenario 4: nack and reject, with and
// without requeue.

import (
	"fmt"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

func publishN(t *testing.T, conn *amqp.Connection, queue string, n int, prefix string) {
	t.Helper()
	ch, confirms := confirming(t, conn)
	var msgs []amqp.Publishing
	for i := 1; i <= n; i++ {
		msgs = append(msgs, text(fmt.Sprintf("%s%d", prefix, i)))
	}
	publishConfirmed(t, ch, confirms, "", queue, msgs...)
	if err := ch.Close(); err != nil {
		t.Fatalf("channel.close: %v", err)
	}
}

func expectBody(t *testing.T, d amqp.Delivery, body string, tag uint64, redelivered bool) {
	t.Helper()
	if string(d.Body) != body || d.DeliveryTag != tag || d.Redelivered != redelivered {
		t.Fatalf("delivery body=%q tag=%d redelivered=%v, want body=%q tag=%d redelivered=%v",
			d.Body, d.DeliveryTag, d.Redelivered, body, tag, redelivered)
	}
}

func TestPrefetchLimitsUnackedDeliveries(t *testing.T) {
	conn, ch := open(t)
	q := uniq(t, "q")
	declareQueue(t, ch, q)
	publishN(t, conn, q, 10, "m")
	if err := ch.Qos(3, 0, false); err != nil {
		t.Fatalf("basic.qos: %v", err)
	}
	deliveries, err := ch.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("basic.consume: %v", err)
	}
	// exactly three arrive
	for i := 1; i <= 3; i++ {
		expectBody(t, recvDelivery(t, deliveries), fmt.Sprintf("m%d", i), uint64(i), false)
	}
	expectNoDelivery(t, deliveries, "prefetch 3 with 3 unacked")

	// one ack lets exactly one more through
	if err := ch.Ack(1, false); err != nil {
		t.Fatal(err)
	}
	expectBody(t, recvDelivery(t, deliveries), "m4", 4, false)
	expectNoDelivery(t, deliveries, "prefetch 3 after one ack")

	// a multiple ack of 2..4 lets three more through
	if err := ch.Ack(4, true); err != nil {
		t.Fatal(err)
	}
	for i := 5; i <= 7; i++ {
		expectBody(t, recvDelivery(t, deliveries), fmt.Sprintf("m%d", i), uint64(i), false)
	}
	expectNoDelivery(t, deliveries, "prefetch 3 after multiple ack")

	// a nack without requeue frees a slot too
	if err := ch.Nack(5, false, false); err != nil {
		t.Fatal(err)
	}
	expectBody(t, recvDelivery(t, deliveries), "m8", 8, false)
	expectNoDelivery(t, deliveries, "prefetch 3 after a nack")

	// a new basic.qos applies to consumers started after it, not to this one
	if err := ch.Qos(10, 0, false); err != nil {
		t.Fatal(err)
	}
	expectNoDelivery(t, deliveries, "prefetch raised after the consumer started")

	// acking the three unacked lets the last two through
	if err := ch.Ack(8, true); err != nil {
		t.Fatal(err)
	}
	expectBody(t, recvDelivery(t, deliveries), "m9", 9, false)
	expectBody(t, recvDelivery(t, deliveries), "m10", 10, false)
	expectNoDelivery(t, deliveries, "queue drained")
	if err := ch.Ack(10, true); err != nil {
		t.Fatal(err)
	}
	// all acked or dropped: nothing left in the queue
	qi, err := ch.QueueDeclarePassive(q, false, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if qi.Messages != 0 || qi.Consumers != 1 {
		t.Fatalf("queue has %d messages %d consumers, want 0 and 1", qi.Messages, qi.Consumers)
	}
}

func TestPrefetchOnePerConsumerRoundRobin(t *testing.T) {
	conn, _ := open(t)
	ch1, ch2 := channel(t, conn), channel(t, conn)
	q := uniq(t, "q")
	declareQueue(t, ch1, q)
	for _, ch := range []*amqp.Channel{ch1, ch2} {
		if err := ch.Qos(1, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	d1, err := ch1.Consume(q, "c1", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := ch2.Consume(q, "c2", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, conn, q, 4, "m")
	a, b := recvDelivery(t, d1), recvDelivery(t, d2)
	expectNoDelivery(t, d1, "consumer 1 at prefetch 1")
	expectNoDelivery(t, d2, "consumer 2 at prefetch 1")
	if a.ConsumerTag != "c1" || b.ConsumerTag != "c2" {
		t.Fatalf("consumer tags %q %q", a.ConsumerTag, b.ConsumerTag)
	}
	got := map[string]bool{string(a.Body): true, string(b.Body): true}
	if !got["m1"] || !got["m2"] {
		t.Fatalf("first two deliveries %q %q, want m1 and m2", a.Body, b.Body)
	}
	if err := a.Ack(false); err != nil {
		t.Fatal(err)
	}
	c := recvDelivery(t, d1)
	if string(c.Body) != "m3" {
		t.Fatalf("after ack on consumer 1 got %q, want m3", c.Body)
	}
	expectNoDelivery(t, d2, "consumer 2 still holds one")
}

func TestNackWithRequeue(t *testing.T) {
	conn, ch := open(t)
	q := uniq(t, "q")
	declareQueue(t, ch, q)
	publishN(t, conn, q, 2, "m")
	d := getOne(t, ch, q, false)
	expectBody(t, d, "m1", 1, false)
	if err := d.Nack(false, true); err != nil {
		t.Fatal(err)
	}
	// back at the head of the queue, marked redelivered
	d = getOne(t, ch, q, false)
	expectBody(t, d, "m1", 2, true)
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	d = getOne(t, ch, q, false)
	expectBody(t, d, "m2", 3, false)
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	expectEmpty(t, ch, q)
}

func TestNackMultipleWithRequeueToConsumer(t *testing.T) {
	conn, ch := open(t)
	q := uniq(t, "q")
	declareQueue(t, ch, q)
	publishN(t, conn, q, 3, "m")
	if err := ch.Qos(3, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		expectBody(t, recvDelivery(t, deliveries), fmt.Sprintf("m%d", i), uint64(i), false)
	}
	if err := ch.Nack(3, true, true); err != nil {
		t.Fatal(err)
	}
	// all three come back, in their original order, redelivered
	for i := 1; i <= 3; i++ {
		expectBody(t, recvDelivery(t, deliveries), fmt.Sprintf("m%d", i), uint64(3+i), true)
	}
	if err := ch.Ack(6, true); err != nil {
		t.Fatal(err)
	}
	expectNoDelivery(t, deliveries, "all acked")
}

func TestNackWithoutRequeueDrops(t *testing.T) {
	conn, ch := open(t)
	q := uniq(t, "q")
	declareQueue(t, ch, q)
	publishN(t, conn, q, 1, "m")
	d := getOne(t, ch, q, false)
	if err := d.Nack(false, false); err != nil {
		t.Fatal(err)
	}
	expectEmpty(t, ch, q)
}

func TestRejectWithRequeue(t *testing.T) {
	conn, ch := open(t)
	q := uniq(t, "q")
	declareQueue(t, ch, q)
	publishN(t, conn, q, 1, "m")
	deliveries, err := ch.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := recvDelivery(t, deliveries)
	expectBody(t, d, "m1", 1, false)
	if err := d.Reject(true); err != nil {
		t.Fatal(err)
	}
	d = recvDelivery(t, deliveries)
	expectBody(t, d, "m1", 2, true)
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	expectNoDelivery(t, deliveries, "acked the only message")
}

func TestRejectWithoutRequeueDrops(t *testing.T) {
	conn, ch := open(t)
	q := uniq(t, "q")
	declareQueue(t, ch, q)
	publishN(t, conn, q, 2, "m")
	deliveries, err := ch.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := recvDelivery(t, deliveries)
	expectBody(t, d, "m1", 1, false)
	if err := d.Reject(false); err != nil {
		t.Fatal(err)
	}
	d = recvDelivery(t, deliveries)
	expectBody(t, d, "m2", 2, false)
	if err := d.Reject(false); err != nil {
		t.Fatal(err)
	}
	expectNoDelivery(t, deliveries, "both rejected")
	qi, err := ch.QueueDeclarePassive(q, false, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if qi.Messages != 0 {
		t.Fatalf("queue has %d messages after reject without requeue, want 0", qi.Messages)
	}
}

func TestUnackedRequeuedWhenChannelCloses(t *testing.T) {
	conn, ch := open(t)
	q := uniq(t, "q")
	declareQueue(t, ch, q)
	publishN(t, conn, q, 2, "m")
	ch2 := channel(t, conn)
	d := getOne(t, ch2, q, false)
	expectBody(t, d, "m1", 1, false)
	if err := ch2.Close(); err != nil {
		t.Fatal(err)
	}
	d = getOne(t, ch, q, true)
	expectBody(t, d, "m1", 1, true)
	d = getOne(t, ch, q, true)
	expectBody(t, d, "m2", 2, false)
}

func TestPrefetchSetBeforeEachConsumer(t *testing.T) {
	// basic.qos (global=false) applies to the consumers started after it on the channel
	conn, ch := open(t)
	q1, q2 := uniq(t, "q1"), uniq(t, "q2")
	declareQueue(t, ch, q1)
	declareQueue(t, ch, q2)
	publishN(t, conn, q1, 5, "a")
	publishN(t, conn, q2, 5, "b")
	if err := ch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	d1, err := ch.Consume(q1, "c1", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(2, 0, false); err != nil {
		t.Fatal(err)
	}
	d2, err := ch.Consume(q2, "c2", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := recvDelivery(t, d1)
	b1, b2 := recvDelivery(t, d2), recvDelivery(t, d2)
	if string(a.Body) != "a1" || string(b1.Body) != "b1" || string(b2.Body) != "b2" {
		t.Fatalf("got %q, %q, %q; want a1, b1, b2", a.Body, b1.Body, b2.Body)
	}
	expectNoDelivery(t, d1, "consumer with prefetch 1")
	expectNoDelivery(t, d2, "consumer with prefetch 2")
	if err := b1.Ack(false); err != nil {
		t.Fatal(err)
	}
	if b3 := recvDelivery(t, d2); string(b3.Body) != "b3" {
		t.Fatalf("got %q, want b3", b3.Body)
	}
	expectNoDelivery(t, d1, "consumer 1 still at its limit")
}

func TestRejectDeadLetters(t *testing.T) {
	// reject without requeue on a queue with a dead-letter exchange: the message moves
	// there with an x-death header
	conn, ch := open(t)
	dlx, dlq, q := uniq(t, "dlx"), uniq(t, "dlq"), uniq(t, "q")
	if err := ch.ExchangeDeclare(dlx, "fanout", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteExchange(dlx) })
	declareQueue(t, ch, dlq)
	if err := ch.QueueBind(dlq, "", dlx, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(q, false, false, false, false, amqp.Table{"x-dead-letter-exchange": dlx}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteQueue(q) })
	publishN(t, conn, q, 1, "m")
	if err := ch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	dead, err := ch.Consume(dlq, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := getOne(t, ch, q, false).Reject(false); err != nil {
		t.Fatal(err)
	}
	d := recvDelivery(t, dead)
	if string(d.Body) != "m1" || d.Exchange != dlx || d.RoutingKey != q || d.Redelivered {
		t.Fatalf("dead-lettered body=%q exchange=%q key=%q redelivered=%v", d.Body, d.Exchange, d.RoutingKey, d.Redelivered)
	}
	deaths, ok := d.Headers["x-death"].([]interface{})
	if !ok || len(deaths) != 1 {
		t.Fatalf("x-death = %#v, want an array of one table", d.Headers["x-death"])
	}
	death, _ := deaths[0].(amqp.Table)
	if death["reason"] != "rejected" || death["queue"] != q || death["exchange"] != "" || death["count"] != int64(1) {
		t.Fatalf("x-death entry %#v", death)
	}
	if err := sameValue("x-death.routing-keys", death["routing-keys"], []interface{}{q}); err != nil {
		t.Fatal(err)
	}
	expectEmpty(t, ch, q)
}
