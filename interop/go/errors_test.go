package interop

// Scenario 10: errors, with exact reply codes and texts, read from the error a method
// returns and from NotifyClose on the channel (or the connection).

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

type errorCase struct {
	name string
	// act does the failing operation on ch; names holds uniq names made for the case. It
	// returns the operation's own error (nil for asynchronous methods such as publish).
	act func(t *testing.T, conn *amqp.Connection, ch *amqp.Channel, names map[string]string) error
	// the expected close: code and text ({q} is names["q"], {x} is names["x"]), cut to
	// 255 bytes as RabbitMQ does
	code int
	text string
	// the whole connection closes, not only the channel
	connection bool
}

func errorCases() []errorCase {
	return []errorCase{
		{
			name: "PassiveDeclareMissingQueue",
			act: func(t *testing.T, _ *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				_, err := ch.QueueDeclarePassive(n["q"], false, false, false, false, nil)
				return err
			},
			code: amqp.NotFound, text: "NOT_FOUND - no queue '{q}' in vhost '/'",
		},
		{
			name: "PassiveDeclareMissingExchange",
			act: func(t *testing.T, _ *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				return ch.ExchangeDeclarePassive(n["x"], "direct", false, false, false, false, nil)
			},
			code: amqp.NotFound, text: "NOT_FOUND - no exchange '{x}' in vhost '/'",
		},
		{
			name: "RedeclareQueueDifferentDurable",
			act: func(t *testing.T, _ *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				if _, err := ch.QueueDeclare(n["q"], false, false, false, false, nil); err != nil {
					t.Fatal(err)
				}
				_, err := ch.QueueDeclare(n["q"], true, false, false, false, nil)
				return err
			},
			code: amqp.PreconditionFailed,
			text: "PRECONDITION_FAILED - inequivalent arg 'durable' for queue '{q}' in vhost '/': received 'true' but current is 'false'",
		},
		{
			name: "RedeclareQueueDifferentArgument",
			act: func(t *testing.T, _ *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				if _, err := ch.QueueDeclare(n["q"], false, false, false, false, amqp.Table{"x-max-length": int32(10)}); err != nil {
					t.Fatal(err)
				}
				_, err := ch.QueueDeclare(n["q"], false, false, false, false, amqp.Table{"x-max-length": int32(20)})
				return err
			},
			code: amqp.PreconditionFailed,
			text: "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '{q}' in vhost '/': received '20' but current is '10'",
		},
		{
			name: "RedeclareExchangeDifferentType",
			act: func(t *testing.T, _ *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				if err := ch.ExchangeDeclare(n["x"], "direct", false, true, false, false, nil); err != nil {
					t.Fatal(err)
				}
				return ch.ExchangeDeclare(n["x"], "fanout", false, true, false, false, nil)
			},
			code: amqp.PreconditionFailed,
			text: "PRECONDITION_FAILED - inequivalent arg 'type' for exchange '{x}' in vhost '/': received 'fanout' but current is 'direct'",
		},
		{
			name: "PublishToMissingExchange",
			act: func(t *testing.T, _ *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				return ch.Publish(n["x"], "key", false, false, text("x"))
			},
			code: amqp.NotFound, text: "NOT_FOUND - no exchange '{x}' in vhost '/'",
		},
		{
			name: "BindToMissingExchange",
			act: func(t *testing.T, _ *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				if _, err := ch.QueueDeclare(n["q"], false, true, false, false, nil); err != nil {
					t.Fatal(err)
				}
				return ch.QueueBind(n["q"], "k", n["x"], false, nil)
			},
			code: amqp.NotFound, text: "NOT_FOUND - no exchange '{x}' in vhost '/'",
		},
		{
			name: "BindMissingQueue",
			act: func(t *testing.T, _ *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				return ch.QueueBind(n["q"], "k", "amq.direct", false, nil)
			},
			code: amqp.NotFound, text: "NOT_FOUND - no queue '{q}' in vhost '/'",
		},
		{
			name: "ConsumeMissingQueue",
			act: func(t *testing.T, _ *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				_, err := ch.Consume(n["q"], "", false, false, false, false, nil)
				return err
			},
			code: amqp.NotFound, text: "NOT_FOUND - no queue '{q}' in vhost '/'",
		},
		{
			name: "GetMissingQueue",
			act: func(t *testing.T, _ *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				_, _, err := ch.Get(n["q"], false)
				return err
			},
			code: amqp.NotFound, text: "NOT_FOUND - no queue '{q}' in vhost '/'",
		},
		{
			name: "AckUnknownDeliveryTag",
			act: func(t *testing.T, _ *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				return ch.Ack(42, false)
			},
			code: amqp.PreconditionFailed, text: "PRECONDITION_FAILED - unknown delivery tag 42",
		},
		{
			name: "AckTwice",
			act: func(t *testing.T, conn *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				declareQueue(t, ch, n["q"])
				publishN(t, conn, n["q"], 1, "m")
				d := getOne(t, ch, n["q"], false)
				if err := d.Ack(false); err != nil {
					t.Fatal(err)
				}
				return d.Ack(false)
			},
			code: amqp.PreconditionFailed, text: "PRECONDITION_FAILED - unknown delivery tag 1",
		},
		{
			name: "RejectUnknownDeliveryTag",
			act: func(t *testing.T, _ *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				return ch.Reject(7, true)
			},
			code: amqp.PreconditionFailed, text: "PRECONDITION_FAILED - unknown delivery tag 7",
		},
		{
			name: "ReservedExchangeName",
			act: func(t *testing.T, _ *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				return ch.ExchangeDeclare("amq.foo", "direct", false, false, false, false, nil)
			},
			code: amqp.AccessRefused,
			text: "ACCESS_REFUSED - exchange name 'amq.foo' contains reserved prefix 'amq.*'",
		},
		{
			name: "ReservedQueueName",
			act: func(t *testing.T, _ *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				_, err := ch.QueueDeclare("amq.q", false, false, false, false, nil)
				return err
			},
			code: amqp.AccessRefused,
			text: "ACCESS_REFUSED - queue name 'amq.q' contains reserved prefix 'amq.*'",
		},
		{
			name: "ExclusiveQueueOfAnotherConnection",
			act: func(t *testing.T, _ *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				_, owner := open(t)
				if _, err := owner.QueueDeclare(n["q"], false, false, true, false, nil); err != nil {
					t.Fatal(err)
				}
				_, err := ch.QueueDeclarePassive(n["q"], false, false, true, false, nil)
				return err
			},
			code: amqp.ResourceLocked,
			text: "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{q}' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.",
		},
		{
			name: "DeleteNonEmptyQueueIfEmpty",
			act: func(t *testing.T, conn *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				declareQueue(t, ch, n["q"])
				publishN(t, conn, n["q"], 1, "m")
				_, err := ch.QueueDelete(n["q"], false, true, false)
				return err
			},
			code: amqp.PreconditionFailed, text: "PRECONDITION_FAILED - queue '{q}' in vhost '/' not empty",
		},
		{
			name: "DeleteQueueInUseIfUnused",
			act: func(t *testing.T, conn *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				declareQueue(t, ch, n["q"])
				other := channel(t, conn)
				if _, err := other.Consume(n["q"], "", false, false, false, false, nil); err != nil {
					t.Fatal(err)
				}
				_, err := ch.QueueDelete(n["q"], true, false, false)
				return err
			},
			code: amqp.PreconditionFailed, text: "PRECONDITION_FAILED - queue '{q}' in vhost '/' in use",
		},
		{
			name: "InvalidQueueArgumentType",
			act: func(t *testing.T, _ *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				_, err := ch.QueueDeclare(n["q"], false, true, false, false, amqp.Table{"x-max-length": "ten"})
				return err
			},
			code: amqp.PreconditionFailed,
			text: "PRECONDITION_FAILED - invalid arg 'x-max-length' for queue '{q}' in vhost '/': \"expected integer, got longstr\"",
		},
		{
			name: "ReuseConsumerTag",
			act: func(t *testing.T, _ *amqp.Connection, ch *amqp.Channel, n map[string]string) error {
				declareQueue(t, ch, n["q"])
				if _, err := ch.Consume(n["q"], "tag-1", false, false, false, false, nil); err != nil {
					t.Fatal(err)
				}
				_, err := ch.Consume(n["q"], "tag-1", false, false, false, false, nil)
				return err
			},
			code: amqp.NotAllowed, text: "NOT_ALLOWED - attempt to reuse consumer tag 'tag-1'",
			connection: true,
		},
	}
}

func TestErrors(t *testing.T) {
	for _, c := range errorCases() {
		c := c
		t.Run(c.name, func(t *testing.T) {
			conn := dial(t)
			connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))
			ch := channel(t, conn)
			chClosed := ch.NotifyClose(make(chan *amqp.Error, 1))
			names := map[string]string{"q": uniq(t, "q"), "x": uniq(t, "x")}
			t.Cleanup(func() { deleteQueue(names["q"]); deleteExchange(names["x"]) })
			want := shortstr(strings.NewReplacer("{q}", names["q"], "{x}", names["x"]).Replace(c.text))

			err := c.act(t, conn, ch, names)
			if err != nil {
				// a synchronous method returns the close that answered it
				expectAMQPError(t, err, c.code, want)
			}
			if c.connection {
				e := closeError(t, connClosed, "connection")
				expectAMQPError(t, e, c.code, want)
				if !conn.IsClosed() {
					t.Fatal("connection still open after a connection error")
				}
				return
			}
			e := closeError(t, chClosed, "channel")
			expectAMQPError(t, e, c.code, want)
			if !ch.IsClosed() {
				t.Fatal("channel still open")
			}
			// the connection and its other channels go on
			if conn.IsClosed() {
				t.Fatal("connection closed by a channel error")
			}
			ch2 := channel(t, conn)
			if _, err := ch2.QueueDeclare("", false, true, true, false, nil); err != nil {
				t.Fatalf("new channel after a channel error: %v", err)
			}
			select {
			case e := <-connClosed:
				t.Fatalf("connection closed: %v", e)
			default:
			}
		})
	}
}

func TestChannelClosedByServerThenReopened(t *testing.T) {
	// the same channel number is reused after a server-initiated close
	conn := dial(t)
	for i := 0; i < 3; i++ {
		ch := channel(t, conn)
		closed := ch.NotifyClose(make(chan *amqp.Error, 1))
		q := uniq(t, fmt.Sprintf("q%d", i))
		_, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
		expectAMQPError(t, err, amqp.NotFound, fmt.Sprintf("NOT_FOUND - no queue '%s' in vhost '/'", q))
		closeError(t, closed, "channel")
	}
}

func TestChannelCloseCrossesServerClose(t *testing.T) {
	// the client closes a channel while the server is closing it for an error (a publish to
	// a missing exchange just before): the two channel.close cross, each side answers with
	// close-ok, and the connection and its other channels go on
	conn := dial(t)
	connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))
	other := channel(t, conn)
	for i := 0; i < 5; i++ {
		ch := channel(t, conn)
		if err := ch.Publish(uniq(t, "missing"), "k", false, false, text("x")); err != nil {
			t.Fatal(err)
		}
		_ = ch.Close() // nil, or the server's 404 if it came first
		ex := uniq(t, fmt.Sprintf("ex%d", i))
		if err := other.ExchangeDeclare(ex, "direct", false, true, false, false, nil); err != nil {
			t.Fatalf("round %d: exchange.declare on another channel: %v", i, err)
		}
		if err := other.ExchangeDelete(ex, false, false); err != nil {
			t.Fatalf("round %d: exchange.delete: %v", i, err)
		}
	}
	select {
	case e := <-connClosed:
		t.Fatalf("connection closed: %v", e)
	default:
	}
}

func TestConcurrentConnectionClose(t *testing.T) {
	// many goroutines close one connection at once: amqp091-go sends a connection.close
	// for each that gets in before the first close-ok; every call must end in nil,
	// ErrClosed, or a *net.OpError from the client writing to the socket it closed itself,
	// never in an EOF (RabbitMQ answers each close with close-ok and leaves closing the
	// socket to the client)
	for round := 0; round < 20; round++ {
		conn, err := amqp.Dial(amqpURL())
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 16)
		for i := 0; i < 16; i++ {
			go func() { errs <- conn.Close() }()
		}
		for i := 0; i < 16; i++ {
			select {
			case err := <-errs:
				var opErr *net.OpError
				if err != nil && err != amqp.ErrClosed && !errors.As(err, &opErr) {
					t.Fatalf("round %d: connection.Close() = %#v (%v)", round, err, err)
				}
			case <-time.After(waitFor):
				t.Fatalf("round %d: Close() did not return", round)
			}
		}
	}
}
