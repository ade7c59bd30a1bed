//! Telling the erasure of an observer's personal data in its change feed.

use crate::pb::v1::{ChangeType, ObserverEvent};

impl ObserverEvent {
    /// Whether this event is the erasure of the observer's personal data (its election's
    /// retention period passed, or an admin called ErasePersonalData): a partner who keeps a
    /// copy of the observer's travel document number, date of birth, e-mail or phone must
    /// erase it now. The erasure is the UPDATED event whose observer's
    /// `personal_data_erase_time` is its `update_time`; later changes of an erased observer
    /// carry the erase time too, but a later update time.
    pub fn erases_personal_data(&self) -> bool {
        let Some(observer) = &self.observer else {
            return false;
        };
        self.r#type() == ChangeType::Updated
            && observer.personal_data_erase_time.is_some()
            && observer.personal_data_erase_time == observer.update_time
    }
}

#[cfg(test)]
mod tests {
    use crate::pb::v1::{ChangeType, Observer, ObserverEvent};
    use prost_types::Timestamp;

    fn event(change: ChangeType, erased: Option<i64>, updated: i64) -> ObserverEvent {
        ObserverEvent {
            r#type: change.into(),
            observer: Some(Observer {
                personal_data_erase_time: erased.map(|seconds| Timestamp { seconds, nanos: 0 }),
                update_time: Some(Timestamp {
                    seconds: updated,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_the_erasure_itself_erases_personal_data() {
        assert!(event(ChangeType::Updated, Some(100), 100).erases_personal_data());
        // A later change of an erased observer.
        assert!(!event(ChangeType::Updated, Some(100), 200).erases_personal_data());
        assert!(!event(ChangeType::Updated, None, 100).erases_personal_data());
        assert!(!event(ChangeType::Created, Some(100), 100).erases_personal_data());
        assert!(!ObserverEvent::default().erases_personal_data());
    }
}
