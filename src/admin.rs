//! Operator actions on the whole broker: deleting a vhost with everything in it, and closing
//! a connection from outside (the management API's `DELETE /api/connections/{name}`).

use crate::broker::Broker;
use crate::connection::ConnEvent;
use crate::error::{BrokerError, ReplyCode};

impl Broker {
    /// The cluster name: as set by an operator, else the node name (RabbitMQ's default).
    pub fn cluster_name(&self) -> String {
        match self.store.cluster_name() {
            Ok(Some(name)) => name,
            _ => crate::broker::node_name(),
        }
    }

    /// Set the cluster name (kept in the store; new connections are told it).
    pub fn set_cluster_name(&self, name: &str) -> Result<(), BrokerError> {
        self.store.put_cluster_name(name)?;
        Ok(())
    }

    /// Delete a vhost: its connections are closed (320), its queues with their messages, its
    /// exchanges, bindings, permissions and limits are removed from memory and from the store.
    /// False if there is no such vhost.
    pub fn delete_vhost(&self, name: &str) -> Result<bool, BrokerError> {
        let Some((_, vh)) = self.vhosts.remove(name) else {
            return Ok(false);
        };
        for c in self.connections.iter().filter(|c| c.vhost == name) {
            let _ = c.tx.send(ConnEvent::Close {
                code: ReplyCode::ConnectionForced,
                text: format!("CONNECTION_FORCED - vhost '{name}' is deleted"),
            });
        }
        for q in vh.queues() {
            let (_, consumers) = vh.delete_queue(&q);
            crate::channel::notify_cancelled(consumers);
        }
        // Channels still open in it are closing: their counts are not kept.
        self.deleted_vhosts.absorb(&vh.metrics);
        for x in vh.exchanges() {
            if x.durable && !x.name.is_empty() && !x.name.starts_with("amq.") {
                self.store.delete_exchange(name, &x.name)?;
            }
        }
        for p in self.access.permissions() {
            if p.vhost == name {
                self.clear_permissions(&p.user, name)?;
            }
        }
        self.access.forget_vhost(name);
        self.vhost_limits.remove(name);
        self.store.delete_policies_of(name)?;
        self.store.delete_vhost(name)?;
        Ok(true)
    }

    /// Close connection `id` with `reason` (320 CONNECTION_FORCED, as RabbitMQ's management
    /// API does). False if it is gone.
    pub fn close_connection(&self, id: u64, reason: &str) -> bool {
        match self.connections.get(&id) {
            Some(c) => {
                c.tx.send(ConnEvent::Close {
                    code: ReplyCode::ConnectionForced,
                    text: format!("CONNECTION_FORCED - {reason}"),
                })
                .is_ok()
            }
            None => false,
        }
    }
}
