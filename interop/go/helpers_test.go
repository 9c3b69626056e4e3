package interop

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// How long to wait for something that must happen, and for how long nothing must happen
// when a test checks that something does not arrive.
const (
	waitFor   = 10 * time.Second
	quietTime = 500 * time.Millisecond
)

func amqpURL() string {
	if u := os.Getenv("AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/%2f"
}

// uniq returns a name unique to this run, e.g. "go-TestTopic-q1-3fa9c2d1".
func uniq(t *testing.T, what string) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	return fmt.Sprintf("go-%s-%s-%s", name, what, hex.EncodeToString(b[:]))
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// dial opens a connection to AMQP_URL and closes it when the test ends.
func dial(t *testing.T) *amqp.Connection {
	t.Helper()
	conn, err := amqp.Dial(amqpURL())
	if err != nil {
		t.Fatalf("dial %s: %v", amqpURL(), err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func channel(t *testing.T, conn *amqp.Connection) *amqp.Channel {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel.open: %v", err)
	}
	return ch
}

// open returns a fresh connection and a channel on it.
func open(t *testing.T) (*amqp.Connection, *amqp.Channel) {
	t.Helper()
	conn := dial(t)
	return conn, channel(t, conn)
}

// confirming returns a channel in confirm mode and the channel its confirmations arrive on.
func confirming(t *testing.T, conn *amqp.Connection) (*amqp.Channel, chan amqp.Confirmation) {
	t.Helper()
	ch := channel(t, conn)
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm.select: %v", err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1024))
	closeReasons.Store(confirms, ch.NotifyClose(make(chan *amqp.Error, 1)))
	return ch, confirms
}

// closeReasons maps a confirmation channel to its channel's NotifyClose, so that a test
// waiting for a confirm can tell why the channel closed.
var closeReasons sync.Map

func whyClosed(confirms chan amqp.Confirmation) string {
	v, ok := closeReasons.Load(confirms)
	if !ok {
		return "unknown reason"
	}
	select {
	case e := <-v.(chan *amqp.Error):
		if e != nil {
			closeReasons.Delete(confirms)
			return e.Error()
		}
	case <-time.After(time.Second):
	}
	return "no close reason"
}

// publishConfirmed publishes msgs on a confirm-mode channel and waits until every one is
// acked, in order.
func publishConfirmed(t *testing.T, ch *amqp.Channel, confirms chan amqp.Confirmation,
	exchange, key string, msgs ...amqp.Publishing) {
	t.Helper()
	first := ch.GetNextPublishSeqNo()
	for i, m := range msgs {
		if err := ch.Publish(exchange, key, false, false, m); err != nil {
			t.Fatalf("publish %d to %q/%q: %v", i, exchange, key, err)
		}
	}
	for i := range msgs {
		c := recvConfirm(t, confirms)
		if want := first + uint64(i); c.DeliveryTag != want || !c.Ack {
			t.Fatalf("confirmation %d: got tag %d ack=%v, want tag %d ack=true", i,
				c.DeliveryTag, c.Ack, want)
		}
	}
}

func recvConfirm(t *testing.T, confirms chan amqp.Confirmation) amqp.Confirmation {
	t.Helper()
	select {
	case c, ok := <-confirms:
		if !ok {
			t.Fatalf("confirmation channel closed (channel or connection closed: %s)", whyClosed(confirms))
		}
		return c
	case <-time.After(waitFor):
		t.Fatalf("no publisher confirm within %v", waitFor)
	}
	panic("unreachable")
}

func recvDelivery(t *testing.T, deliveries <-chan amqp.Delivery) amqp.Delivery {
	t.Helper()
	select {
	case d, ok := <-deliveries:
		if !ok {
			t.Fatal("delivery channel closed (consumer cancelled or channel closed)")
		}
		return d
	case <-time.After(waitFor):
		t.Fatalf("no delivery within %v", waitFor)
	}
	panic("unreachable")
}

// expectNoDelivery checks that nothing arrives within quietTime.
func expectNoDelivery(t *testing.T, deliveries <-chan amqp.Delivery, why string) {
	t.Helper()
	select {
	case d, ok := <-deliveries:
		if ok {
			t.Fatalf("%s: unexpected delivery tag %d body %q", why, d.DeliveryTag, d.Body)
		}
		t.Fatalf("%s: delivery channel closed", why)
	case <-time.After(quietTime):
	}
}

func text(s string) amqp.Publishing {
	return amqp.Publishing{ContentType: "text/plain", Body: []byte(s)}
}

func declareQueue(t *testing.T, ch *amqp.Channel, name string) {
	t.Helper()
	if _, err := ch.QueueDeclare(name, false, false, false, false, nil); err != nil {
		t.Fatalf("queue.declare %s: %v", name, err)
	}
	t.Cleanup(func() { deleteQueue(name) })
}

// deleteQueue removes a queue on a connection of its own (the test's may be closed).
func deleteQueue(name string) {
	conn, err := amqp.Dial(amqpURL())
	if err != nil {
		return
	}
	defer conn.Close()
	if ch, err := conn.Channel(); err == nil {
		_, _ = ch.QueueDelete(name, false, false, false)
	}
}

func deleteExchange(name string) {
	conn, err := amqp.Dial(amqpURL())
	if err != nil {
		return
	}
	defer conn.Close()
	if ch, err := conn.Channel(); err == nil {
		_ = ch.ExchangeDelete(name, false, false)
	}
}

// drain takes every message from a queue with basic.get (auto-ack) and returns the bodies.
func drain(t *testing.T, ch *amqp.Channel, queue string) []string {
	t.Helper()
	var got []string
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatalf("basic.get %s: %v", queue, err)
		}
		if !ok {
			return got
		}
		got = append(got, string(d.Body))
	}
}

// getOne takes one message from a queue with basic.get; it fails the test if there is none.
func getOne(t *testing.T, ch *amqp.Channel, queue string, autoAck bool) amqp.Delivery {
	t.Helper()
	d, ok, err := ch.Get(queue, autoAck)
	if err != nil {
		t.Fatalf("basic.get %s: %v", queue, err)
	}
	if !ok {
		t.Fatalf("basic.get %s: queue empty, expected a message", queue)
	}
	return d
}

func expectEmpty(t *testing.T, ch *amqp.Channel, queue string) {
	t.Helper()
	d, ok, err := ch.Get(queue, true)
	if err != nil {
		t.Fatalf("basic.get %s: %v", queue, err)
	}
	if ok {
		t.Fatalf("queue %s: expected empty, got a message %q (redelivered=%v)", queue, d.Body,
			d.Redelivered)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// closeError waits for the channel (or connection) close that notify reports.
func closeError(t *testing.T, notify chan *amqp.Error, what string) *amqp.Error {
	t.Helper()
	select {
	case e, ok := <-notify:
		if !ok || e == nil {
			t.Fatalf("%s: closed without an error", what)
		}
		return e
	case <-time.After(waitFor):
		t.Fatalf("%s: not closed within %v", what, waitFor)
	}
	panic("unreachable")
}

// shortstr cuts a reply text the way RabbitMQ does to fit a short string: longer than
// 255 bytes, it keeps 252 and appends "...".
func shortstr(s string) string {
	if len(s) > 255 {
		return s[:252] + "..."
	}
	return s
}

// expectAMQPError checks that err is an *amqp.Error from the server with this code and text.
func expectAMQPError(t *testing.T, err error, code int, reason string) {
	t.Helper()
	var e *amqp.Error
	if !errors.As(err, &e) {
		t.Fatalf("expected a server error %d %q, got %T %v", code, reason, err, err)
	}
	if e.Code != code || e.Reason != reason || !e.Server {
		t.Fatalf("got error code=%d reason=%q server=%v, want code=%d reason=%q server=true",
			e.Code, e.Reason, e.Server, code, reason)
	}
}
