//! warren: an AMQP 0-9-1 message broker that RabbitMQ clients use unchanged.
//!
//! # Layout
//!
//! - [`config`]: the embedded defaults, an optional file and flags, validated once;
//!   [`rabbitmq_conf`]: RabbitMQ's `rabbitmq.conf` read as it is.
//! - [`server`]: the listener, the accept loop and graceful shutdown.
//! - [`codec`]: frames on the wire, on top of amq-protocol's method and header parsers.
//! - [`connection`]: one task per socket: handshake, tune, heartbeats, the channel table.
//! - [`channel`]: per-channel state and one handler file per AMQP class.
//! - [`broker`]: the registries shared by all connections (vhosts, users, limits, listeners).
//! - [`vhost`]: exchanges and queues of one virtual host, and the publish entry point.
//! - [`exchange`]: one small file per exchange type, routing is pure.
//! - [`queue`]: messages, consumers, credit and dispatch.
//! - [`message`]: a published message, shared between queues without copying.
//! - [`store`]: everything that touches sled, and the segment files holding large bodies.
//! - [`memory`]: resident size, and handing freed heap pages back to the system.
//! - [`error`]: AMQP errors and where they close.
//! - [`access`]: users, password hashes, permissions and limits; [`definitions`]: importing
//!   RabbitMQ's JSON definitions; [`policy`]: policies, their validation and matching.
//! - [`alarm`]: memory and disk alarms that block publishers.
//! - [`tls`]: the AMQPS acceptor (rustls) and client-certificate names.
//! - [`mgmt`]: the management HTTP API, its web page and the Prometheus endpoint (axum), and
//!   the control listener of the command-line tools ([`mgmt::control`]).
//! - [`cli`]: `rabbitmqctl`, `rabbitmq-diagnostics` and `rabbitmq-plugins`, in the same
//!   binary (chosen by the name it is called with).
//! - [`timer`]: the timer threads of queue expiry and delayed messages.
//! - [`fd`]: the open-files limit.
//!
//! # Data path
//!
//! A connection task reads frames ([`codec`]), feeds channel frames to the channel's content
//! assembler, and runs each complete command. `basic.publish` goes to
//! [`vhost::VHost::publish`], which routes through the exchange graph (pure, no I/O) and
//! enqueues one shared [`message::Message`] on each matched queue. A queue hands ready messages
//! to consumers with credit (prefetch), round-robin, by sending them to the consumer's
//! connection task; that task assigns the delivery tag, encodes the frames into its write
//! buffer, and flushes the buffer to the socket once it has no more immediate work.

pub mod access;
pub mod admin;
pub mod alarm;
pub mod broker;
pub mod channel;
pub mod cli;
pub mod codec;
pub mod config;
pub mod connection;
pub mod definitions;
pub mod error;
pub mod exchange;
pub mod fd;
pub mod field;
pub mod logging;
pub mod memory;
pub mod message;
pub mod mgmt;
pub mod policy;
pub mod queue;
pub mod rabbitmq_conf;
pub mod server;
pub mod stats;
pub mod store;
pub mod timer;
pub mod tls;
pub mod vhost;
