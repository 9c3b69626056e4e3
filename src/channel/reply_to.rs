//! Direct reply-to on the requester's channel (see `vhost::reply_to` for the names and the
//! routing): consuming from `amq.rabbitmq.reply-to`, the `reply_to` rewrite of its requests,
//! and writing the replies. Reply texts are RabbitMQ's.

use super::{generated_name, Channel, Ctx};
use crate::codec::OutBuf;
use crate::error::{AmqpError, AmqpResult};
use crate::message::Message;
use crate::vhost::{reply_name_is_well_formed, VHost, REPLY_QUEUE};
use amq_protocol::protocol::basic::AMQPProperties;
use amq_protocol::protocol::{basic as b, AMQPClass};
use std::sync::Arc;

/// This channel's direct reply-to consumer: its tag and generated name.
#[derive(Debug)]
pub(super) struct ReplyConsumer {
    pub tag: Arc<str>,
    pub name: Arc<str>,
}

impl Channel {
    /// basic.consume from `amq.rabbitmq.reply-to`: no-ack only, one per channel.
    pub(super) fn consume_replies(&mut self, ctx: &mut Ctx, c: &b::Consume) -> AmqpResult<()> {
        let tag: Arc<str> = if c.consumer_tag.as_str().is_empty() {
            generated_name("amq.ctag-").into()
        } else {
            c.consumer_tag.as_str().into()
        };
        if self.consumers.contains_key(&tag) || self.reply.as_ref().is_some_and(|r| r.tag == tag) {
            return Err(AmqpError::not_allowed(format!(
                "attempt to reuse consumer tag '{tag}'"
            )));
        }
        if !c.no_ack {
            return Err(AmqpError::precondition("reply consumer cannot acknowledge"));
        }
        if self.reply.is_some() {
            return Err(AmqpError::precondition("reply consumer already set"));
        }
        let name = ctx.vhost.register_reply(ctx.events.clone(), self.id);
        self.reply = Some(ReplyConsumer {
            tag: tag.clone(),
            name,
        });
        if !c.nowait {
            ctx.out.method(
                self.id,
                AMQPClass::Basic(b::AMQPMethod::ConsumeOk(b::ConsumeOk {
                    consumer_tag: tag.as_ref().into(),
                })),
            );
        }
        Ok(())
    }

    /// basic.cancel naming the reply consumer: it stops (its name no longer receives).
    /// Returns false when `tag` is not the reply consumer.
    pub(super) fn cancel_replies(&mut self, vhost: &VHost, tag: &str) -> bool {
        if self.reply.as_ref().is_none_or(|r| &*r.tag != tag) {
            return false;
        }
        self.stop_replies(vhost);
        true
    }

    /// Forget the reply consumer (cancel, channel or connection closed).
    pub(super) fn stop_replies(&mut self, vhost: &VHost) {
        if let Some(r) = self.reply.take() {
            vhost.unregister_reply(&r.name);
        }
    }

    /// basic.consume or basic.get naming a generated reply name: only its own channel
    /// consumes from it, once. A name this broker cannot have generated does not exist.
    pub(super) fn reply_name_refused(&self, ctx: &Ctx, name: &str, get: bool) -> AmqpError {
        let vh = &ctx.vhost.name;
        if !reply_name_is_well_formed(name) {
            return ctx.vhost.no_queue(name);
        }
        if get {
            return AmqpError::not_implemented(format!(
                "basic.get not supported by volatile queue '{name}' in vhost '{vh}'"
            ));
        }
        if self.reply.as_ref().is_some_and(|r| &*r.name == name) {
            AmqpError::precondition(format!(
                "multiple consumers are unsupported for queue '{name}' in vhost '{vh}'"
            ))
        } else {
            AmqpError::precondition(format!(
                "only creator channel may consume from queue '{name}' in vhost '{vh}'"
            ))
        }
    }

    /// A request published with `reply_to: amq.rabbitmq.reply-to` carries this channel's
    /// generated name instead; without a reply consumer the publish is refused.
    pub(super) fn rewrite_reply_to(
        &self,
        props: &AMQPProperties,
    ) -> AmqpResult<Option<AMQPProperties>> {
        if props
            .reply_to()
            .as_ref()
            .is_none_or(|r| r.as_str() != REPLY_QUEUE)
        {
            return Ok(None);
        }
        match &self.reply {
            Some(r) => Ok(Some(props.clone().with_reply_to(r.name.as_ref().into()))),
            None => Err(AmqpError::precondition(
                "fast reply consumer does not exist",
            )),
        }
    }

    /// Write a reply published to `name`, if this channel still consumes under it (a reply
    /// for a cancelled consumer is dropped, as RabbitMQ does).
    pub fn deliver_reply(&mut self, out: &mut OutBuf, frame_max: u32, name: &str, msg: &Message) {
        if !self.is_open() {
            return;
        }
        let Some(r) = self.reply.as_ref().filter(|r| &*r.name == name) else {
            return;
        };
        let dtag = self.next_delivery_tag;
        self.next_delivery_tag += 1;
        out.deliver(
            self.id,
            &r.tag,
            dtag,
            false,
            &msg.exchange,
            &msg.routing_key,
        );
        out.content(self.id, &msg.raw_properties, &msg.body, frame_max);
    }
}
