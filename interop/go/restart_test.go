package interop

// Scenario 9: durable queues and persistent messages survive a broker restart.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func restartBroker(t *testing.T) {
	t.Helper()
	cmd := os.Getenv("BROKER_RESTART")
	if cmd == "" {
		t.Skip("BROKER_RESTART is not set (run through interop/run.sh)")
	}
	start := time.Now()
	out, err := exec.Command("sh", "-c", cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("BROKER_RESTART failed: %v\n%s", err, out)
	}
	t.Logf("broker restarted in %v", time.Since(start).Round(time.Millisecond))
}

// redial connects again, retrying for a while: the broker may still be starting.
func redial(t *testing.T) *amqp.Connection {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := amqp.Dial(amqpURL())
		if err == nil {
			t.Cleanup(func() { _ = conn.Close() })
			return conn
		}
		if time.Now().After(deadline) {
			t.Fatalf("cannot reconnect after restart: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestRestartKeepsDurableQueuesAndPersistentMessages(t *testing.T) {
	if os.Getenv("BROKER_RESTART") == "" {
		t.Skip("BROKER_RESTART is not set (run through interop/run.sh)")
	}
	conn, err := amqp.Dial(amqpURL())
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1024))
	durable, transientQ := uniq(t, "durable"), uniq(t, "transient")
	t.Cleanup(func() { deleteQueue(durable); deleteQueue(transientQ) })
	if _, err := ch.QueueDeclare(durable, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(transientQ, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	ex := uniq(t, "ex")
	t.Cleanup(func() { deleteExchange(ex) })
	if err := ch.ExchangeDeclare(ex, "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(durable, "keep.#", ex, false, nil); err != nil {
		t.Fatal(err)
	}

	var want []amqp.Publishing
	sizes := []int{0, 1, 100, 4096, 200000, 1 << 20, 17, 5 << 20, 3}
	for i, n := range sizes {
		want = append(want, amqp.Publishing{
			DeliveryMode: amqp.Persistent,
			MessageId:    fmt.Sprintf("m%d", i),
			ContentType:  "application/octet-stream",
			Priority:     uint8(i % 10),
			Headers:      amqp.Table{"i": int32(i), "s": fmt.Sprintf("n=%d", n), "nested": amqp.Table{"b": true}},
			Timestamp:    time.Unix(int64(1700000000+i), 0),
			Body:         randomBytes(t, n),
		})
	}
	// persistent ones through the default exchange and the durable topic exchange, and a
	// transient one in the durable queue, which a restart loses
	for i, m := range want {
		if i%2 == 0 {
			publishConfirmed(t, ch, confirms, "", durable, m)
		} else {
			publishConfirmed(t, ch, confirms, ex, "keep.it", m)
		}
	}
	publishConfirmed(t, ch, confirms, "", durable, amqp.Publishing{DeliveryMode: amqp.Transient, Body: []byte("transient")})
	publishConfirmed(t, ch, confirms, "", transientQ, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("p")})
	qi, err := ch.QueueDeclarePassive(durable, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if qi.Messages != len(want)+1 {
		t.Fatalf("before restart: %d messages, want %d", qi.Messages, len(want)+1)
	}
	conn.Close()

	restartBroker(t)

	conn = redial(t)
	ch = channel(t, conn)
	qi, err = ch.QueueDeclarePassive(durable, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("durable queue gone after restart: %v", err)
	}
	if qi.Messages != len(want) {
		t.Fatalf("after restart: %d messages, want %d (the persistent ones)", qi.Messages, len(want))
	}
	for i, m := range want {
		d := getOne(t, ch, durable, false)
		if !bytes.Equal(d.Body, m.Body) {
			t.Fatalf("message %d: %d bytes, want %d byte-exact (message id %q)", i, len(d.Body), len(m.Body), d.MessageId)
		}
		if d.Redelivered || d.MessageId != m.MessageId || d.DeliveryMode != 2 || d.Priority != m.Priority ||
			!d.Timestamp.Equal(m.Timestamp) || d.ContentType != m.ContentType {
			t.Fatalf("message %d: redelivered=%v id=%q mode=%d prio=%d ts=%v type=%q", i, d.Redelivered,
				d.MessageId, d.DeliveryMode, d.Priority, d.Timestamp, d.ContentType)
		}
		if err := sameTable("headers", d.Headers, m.Headers); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	expectEmpty(t, ch, durable)

	// the durable exchange and its binding survived too
	ch2, confirms2 := confirming(t, conn)
	if err := ch2.ExchangeDeclarePassive(ex, "topic", true, false, false, false, nil); err != nil {
		t.Fatalf("durable exchange gone after restart: %v", err)
	}
	publishConfirmed(t, ch2, confirms2, ex, "keep.again", text("after"))
	if got := drain(t, ch2, durable); !equalStrings(got, []string{"after"}) {
		t.Fatalf("binding after restart: queue got %q", got)
	}

	// the non-durable queue is gone
	closed := ch2.NotifyClose(make(chan *amqp.Error, 1))
	_, err = ch2.QueueDeclarePassive(transientQ, false, false, false, false, nil)
	expectAMQPError(t, err, amqp.NotFound, fmt.Sprintf("NOT_FOUND - no queue '%s' in vhost '/'", transientQ))
	closeError(t, closed, "passive declare of the non-durable queue")
}
