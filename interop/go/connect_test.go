package interop

// Scenario 1: connecting with credentials and a vhost, and the two ways it fails.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// recordingConn keeps a copy of every byte the server sends, so that a test can read the
// connection.close the broker sent even where amqp091-go replaces it with its own error.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	got bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.got.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *recordingConn) received() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.got.Bytes()...)
}

type serverClose struct {
	code            uint16
	text            string
	classID, method uint16
}

// serverMethods parses the frames the server sent (it sends no protocol header) and
// returns the class/method ids of its method frames on channel 0, and the connection.close
// among them if there is one.
func serverMethods(t *testing.T, raw []byte) (methods [][2]uint16, closed *serverClose) {
	t.Helper()
	for len(raw) > 0 {
		if len(raw) < 8 {
			t.Fatalf("truncated frame header from server: % x", raw)
		}
		typ, chID, size := raw[0], binary.BigEndian.Uint16(raw[1:3]), binary.BigEndian.Uint32(raw[3:7])
		if uint32(len(raw)) < 8+size {
			t.Fatalf("truncated frame from server (type %d, size %d, have %d)", typ, size, len(raw)-7)
		}
		payload, end := raw[7:7+size], raw[7+size]
		if end != 0xCE {
			t.Fatalf("frame end octet %#x, want 0xce", end)
		}
		raw = raw[8+size:]
		if typ != 1 || chID != 0 || len(payload) < 4 {
			continue
		}
		class, method := binary.BigEndian.Uint16(payload[0:2]), binary.BigEndian.Uint16(payload[2:4])
		methods = append(methods, [2]uint16{class, method})
		if class == 10 && method == 50 {
			args := payload[4:]
			code := binary.BigEndian.Uint16(args[0:2])
			n := int(args[2])
			txt := string(args[3 : 3+n])
			rest := args[3+n:]
			closed = &serverClose{code, txt, binary.BigEndian.Uint16(rest[0:2]),
				binary.BigEndian.Uint16(rest[2:4])}
		}
	}
	return methods, closed
}

func dialRecording(t *testing.T, rawURL string, vhost string) (*amqp.Connection, *recordingConn, error) {
	t.Helper()
	var rec *recordingConn
	conn, err := amqp.DialConfig(rawURL, amqp.Config{
		Vhost: vhost,
		Dial: func(network, addr string) (net.Conn, error) {
			c, err := net.DialTimeout(network, addr, waitFor)
			if err != nil {
				return nil, err
			}
			rec = &recordingConn{Conn: c}
			return rec, nil
		},
	})
	if rec == nil {
		t.Fatalf("dial %s: no TCP connection made: %v", rawURL, err)
	}
	return conn, rec, err
}

// waitServerGone waits until the server has closed the socket, so that everything it sent
// has been read and recorded.
func waitServerGone(t *testing.T, conn *amqp.Connection) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for conn != nil && !conn.IsClosed() {
		if time.Now().After(deadline) {
			t.Fatal("connection still open")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConnectWithCredentialsAndVhost(t *testing.T) {
	u, err := url.Parse(amqpURL())
	if err != nil {
		t.Fatal(err)
	}
	conn, rec, err := dialRecording(t, amqpURL(), "/")
	if err != nil {
		t.Fatalf("connect as %s to vhost /: %v", u.User.Username(), err)
	}
	defer conn.Close()
	if conn.Config.Vhost != "/" {
		t.Fatalf("vhost %q, want /", conn.Config.Vhost)
	}
	methods, closed := serverMethods(t, rec.received())
	want := [][2]uint16{{10, 10}, {10, 30}, {10, 41}} // start, tune, open-ok
	if closed != nil || len(methods) != 3 || methods[0] != want[0] || methods[1] != want[1] || methods[2] != want[2] {
		t.Fatalf("server methods %v (close %+v), want %v", methods, closed, want)
	}
	if conn.Properties["product"] == nil || conn.Major != 0 || conn.Minor != 9 {
		t.Fatalf("server properties %v version %d-%d", conn.Properties, conn.Major, conn.Minor)
	}
	caps, _ := conn.Properties["capabilities"].(amqp.Table)
	for _, c := range []string{"publisher_confirms", "basic.nack", "consumer_cancel_notify", "exchange_exchange_bindings"} {
		if caps[c] != true {
			t.Errorf("server capability %s = %v, want true", c, caps[c])
		}
	}
	ch := channel(t, conn)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatalf("queue.declare on the new connection: %v", err)
	}
	if len(q.Name) == 0 {
		t.Fatal("server-named queue has no name")
	}
	if err := conn.Close(); err != nil {
		t.Fatalf("connection.close: %v", err)
	}
}

func TestConnectVhostFromURL(t *testing.T) {
	// the same vhost given in the URL only (%2f is "/")
	u, err := url.Parse(amqpURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path, u.RawPath = "//", "/%2f"
	conn, err := amqp.Dial(u.String())
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	defer conn.Close()
	if conn.Config.Vhost != "/" {
		t.Fatalf("vhost %q, want /", conn.Config.Vhost)
	}
}

func TestConnectUnknownVhostFails(t *testing.T) {
	vhost := uniq(t, "vhost")
	conn, rec, err := dialRecording(t, amqpURL(), vhost)
	if err == nil {
		conn.Close()
		t.Fatalf("connection to vhost %q succeeded", vhost)
	}
	if !errors.Is(err, amqp.ErrVhost) {
		t.Fatalf("error %v, want amqp.ErrVhost", err)
	}
	waitServerGone(t, conn)
	_, closed := serverMethods(t, rec.received())
	if closed == nil {
		t.Fatal("server sent no connection.close")
	}
	want := serverClose{530, "NOT_ALLOWED - vhost " + vhost + " not found", 10, 40}
	if *closed != want {
		t.Fatalf("connection.close %+v, want %+v", *closed, want)
	}
}

func TestConnectWrongPasswordFails(t *testing.T) {
	u, err := url.Parse(amqpURL())
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "definitely-not-the-password")
	conn, rec, err := dialRecording(t, u.String(), "")
	if err == nil {
		conn.Close()
		t.Fatal("connection with a wrong password succeeded")
	}
	if !errors.Is(err, amqp.ErrCredentials) {
		t.Fatalf("error %v, want amqp.ErrCredentials (403)", err)
	}
	var e *amqp.Error
	if !errors.As(err, &e) || e.Code != amqp.AccessRefused {
		t.Fatalf("error %v, want code %d", err, amqp.AccessRefused)
	}
	waitServerGone(t, conn)
	// amqp091-go does not announce the authentication_failure_close capability, so the
	// server closes the socket right after connection.start without a connection.close
	// or a connection.tune.
	methods, closed := serverMethods(t, rec.received())
	if closed != nil || len(methods) != 1 || methods[0] != [2]uint16{10, 10} {
		t.Fatalf("server methods %v (close %+v), want only connection.start", methods, closed)
	}
}

func TestConnectUnknownUserFails(t *testing.T) {
	u, err := url.Parse(amqpURL())
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(uniq(t, "user"), "guest")
	conn, err := amqp.Dial(u.String())
	if err == nil {
		conn.Close()
		t.Fatal("connection as an unknown user succeeded")
	}
	if !errors.Is(err, amqp.ErrCredentials) {
		t.Fatalf("error %v, want amqp.ErrCredentials (403)", err)
	}
}
