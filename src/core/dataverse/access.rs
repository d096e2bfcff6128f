//! What a user may do to one row: the Web API's `RetrievePrincipalAccess` function, bound to the
//! user, answers the row's access rights as a list of flags
//! (`{"AccessRights": "ReadAccess, WriteAccess, DeleteAccess, …"}`).

use crate::core::json::{Map, Value};
use crate::prelude::*;

/// The path, under the Web API root, that asks what `user` may do to the row `id` of
/// `entity_set`.
pub fn query(user: &str, entity_set: &str, id: &str) -> String {
    format!("systemusers({user})/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@t)?@t={{'@odata.id':'{entity_set}({id})'}}")
}

/// Whether the answer grants deleting the row.
pub fn may_delete(answer: &Map) -> bool {
    answer
        .get("AccessRights")
        .and_then(Value::as_str)
        .is_some_and(|rights| rights.split(',').any(|right| right.trim() == "DeleteAccess"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::json;

    #[test]
    fn the_right_to_delete_is_read_from_the_flags() {
        assert_eq!(
            query("u-1", "contacts", "c-1"),
            "systemusers(u-1)/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@t)?@t={'@odata.id':'contacts(c-1)'}"
        );
        let answer = |rights: &str| json!({"AccessRights": rights}).as_object().unwrap().clone();
        assert!(may_delete(&answer("ReadAccess, WriteAccess, DeleteAccess, ShareAccess")));
        assert!(!may_delete(&answer("ReadAccess, WriteAccess")));
        assert!(!may_delete(&answer("ReadAccess, NoDeleteAccess")));
        assert!(!may_delete(&Map::new()));
    }
}
