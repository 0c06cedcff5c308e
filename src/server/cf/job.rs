//! CF jobs any replica can answer. A delete is done before its 202 is sent,
//! so a job has nothing left to track: its guid carries when it was made and
//! which API made it, with a check, and any replica decodes it.

use crate::model::Uuid;
use chrono::{DateTime, Utc};

/// Which API's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobApi {
    V2,
    V3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub guid: String,
    pub api: JobApi,
    pub created_at: DateTime<Utc>,
}

const KEY: u32 = 0x5347_4a42; // "SGJB"

fn check(bytes: &[u8]) -> u16 {
    let mut h: u32 = 0x811c_9dc5 ^ KEY;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h ^ (h >> 16)) as u16
}

/// A new job made now.
pub fn new_job(api: JobApi, at: DateTime<Utc>) -> Job {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&(at.timestamp().clamp(0, i64::from(u32::MAX)) as u32).to_be_bytes());
    b[4] = match api {
        JobApi::V2 => 2,
        JobApi::V3 => 3,
    };
    b[5..14].copy_from_slice(&fastrand::u128(..).to_be_bytes()[..9]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8: custom layout
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let c = check(&b[..14]);
    b[14..].copy_from_slice(&c.to_be_bytes());
    let guid = uuid::Uuid::from_bytes(b).hyphenated().to_string();
    Job {
        guid,
        api,
        created_at: DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at),
    }
}

/// The job a guid names, if it is one of ours.
pub fn decode(guid: &str) -> Option<Job> {
    let id = Uuid::parse(guid)?;
    let b = *uuid::Uuid::parse_str(id.as_str()).ok()?.as_bytes();
    if b[6] >> 4 != 8 || u16::from_be_bytes([b[14], b[15]]) != check(&b[..14]) {
        return None;
    }
    let api = match b[4] {
        2 => JobApi::V2,
        3 => JobApi::V3,
        _ => return None,
    };
    let secs = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some(Job {
        guid: id.to_string(),
        api,
        created_at: DateTime::from_timestamp(i64::from(secs), 0)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_decode_anywhere_and_random_guids_do_not() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let job = new_job(JobApi::V3, at);
        assert_eq!(decode(&job.guid), Some(job.clone()));
        assert_eq!(decode(&job.guid.to_uppercase()).map(|j| j.api), Some(JobApi::V3));
        let mut tampered = job.guid.clone().into_bytes();
        tampered[0] = if tampered[0] == b'0' { b'1' } else { b'0' };
        assert_eq!(decode(std::str::from_utf8(&tampered).unwrap()), None);
        assert_eq!(decode("72797142-1dd1-45d8-b55c-cb51fe6f94fa"), None);
    }
}
