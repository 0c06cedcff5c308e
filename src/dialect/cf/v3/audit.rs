//! The v3 audit event object (CC's `EventPresenter`): times to the second,
//! `space` and `organization` null when the event has none.

use super::wire::{Guid, SelfLink};
use serde::Serialize;
use serde_json::value::RawValue;

#[derive(Debug, Serialize)]
pub struct Party {
    pub guid: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct AuditEvent {
    pub guid: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub actor: Party,
    pub target: Party,
    pub data: Box<RawValue>,
    pub space: Option<Guid>,
    pub organization: Option<Guid>,
    pub links: SelfLink,
}
