//! Per-user and per-vhost limits at the connection, with RabbitMQ's texts (recorded from
//! 3.10.8): connections per vhost and per user (checked at connection.open), channels per user
//! (checked at channel.open). All 530 NOT_ALLOWED, closing the connection.

use super::Conn;
use crate::access::limit;
use crate::error::{AmqpError, AmqpResult};
use std::sync::atomic::Ordering;

impl Conn {
    /// At connection.open, before the connection counts: the vhost's and the user's
    /// connection limits.
    pub(super) fn check_connection_limits(&self, vhost: &str) -> AmqpResult<()> {
        let b = &self.broker;
        let vhost_max = b
            .vhost_limits
            .get(vhost)
            .and_then(|l| limit(l.max_connections));
        if let Some(max) = vhost_max {
            if b.connections_of(Some(vhost), None) >= max {
                return Err(AmqpError::not_allowed(format!(
                    "access to vhost '{vhost}' refused for user '{}': connection limit ({max}) is reached",
                    self.user
                ))
                .on(10, 40));
            }
        }
        let user_max = b
            .access
            .user(&self.user)
            .and_then(|u| limit(u.limits.max_connections));
        if let Some(max) = user_max {
            if b.connections_of(None, Some(&self.user)) >= max {
                return Err(AmqpError::not_allowed(format!(
                    "connection refused for user '{}': user connection limit ({max}) is reached",
                    self.user
                ))
                .on(10, 40));
            }
        }
        Ok(())
    }

    /// At channel.open: the user's channel limit, over all its connections.
    pub(super) fn check_user_channel_limit(&self) -> AmqpResult<()> {
        let user = self.broker.access.user(&self.user);
        let Some(max) = user.and_then(|u| limit(u.limits.max_channels)) else {
            return Ok(());
        };
        if self.broker.channels_of(&self.user) >= max {
            return Err(AmqpError::not_allowed(format!(
                "number of channels opened for user '{}' has reached the maximum allowed user limit of ({max})",
                self.user
            ))
            .on(20, 10));
        }
        Ok(())
    }

    /// Publish the number of open channels for the limits of other connections.
    /// Open channels changed: update the count limits check and the list others see.
    pub(super) fn count_channels(&self) {
        self.channel_gauge
            .store(self.channels.len(), Ordering::Relaxed);
        let mut infos: Vec<_> = self.channels.values().map(|c| c.info().clone()).collect();
        infos.sort_by_key(|c| c.number);
        *self.info.channels.lock().unwrap_or_else(|e| e.into_inner()) = infos;
    }
}
