//! The query parameters every listing takes, as RabbitMQ's management API reads them:
//! `columns` (dotted paths select nested fields), `sort` and `sort_reverse`, and pagination
//! (`page`, `page_size`, `name`, `use_regex`), which wraps the items in a page object.

use super::ApiError;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::cmp::Ordering;

/// Largest `page_size` RabbitMQ accepts.
const MAX_PAGE_SIZE: usize = 500;

#[derive(Deserialize, Default, Debug)]
pub struct ListQuery {
    pub columns: Option<String>,
    pub sort: Option<String>,
    pub sort_reverse: Option<String>,
    pub page: Option<String>,
    pub page_size: Option<String>,
    pub name: Option<String>,
    pub use_regex: Option<String>,
}

/// The value at a dotted `path` ("message_stats.publish").
fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
        (None, None) => Ordering::Equal,
    }
}

/// Keep only `columns` of an item; a dotted column keeps the nested field under its parents.
pub fn select(item: &Value, columns: &str) -> Value {
    let mut out = Map::new();
    for col in columns.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let Some(v) = lookup(item, col) else { continue };
        let mut parts: Vec<&str> = col.split('.').collect();
        let last = parts.pop().unwrap_or(col);
        let mut m = &mut out;
        for p in parts {
            m = m
                .entry(p.to_string())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("a column's parent is an object");
        }
        m.insert(last.to_string(), v.clone());
    }
    Value::Object(out)
}

/// A pagination number: absent, or an integer (anything else is refused as RabbitMQ does).
fn number(v: &Option<String>) -> Result<Option<i64>, ApiError> {
    match v {
        None => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request("Pagination parameters are invalid")),
    }
}

/// Sort, filter, paginate and select columns, as RabbitMQ answers a listing.
pub fn respond(mut items: Vec<Value>, q: &ListQuery) -> Result<Value, ApiError> {
    if let Some(key) = q.sort.as_deref().filter(|k| !k.is_empty()) {
        items.sort_by(|a, b| compare(lookup(a, key), lookup(b, key)));
    }
    if q.sort_reverse.as_deref() == Some("true") {
        items.reverse();
    }
    let cols = |v: Value| match q.columns.as_deref() {
        Some(c) if !c.is_empty() => select(&v, c),
        _ => v,
    };
    if q.page.is_none() {
        return Ok(Value::Array(items.into_iter().map(cols).collect()));
    }
    let page = number(&q.page)?.unwrap_or(1);
    let size = number(&q.page_size)?;
    let page_size = size.unwrap_or(100);
    if page < 1 || !(1..=MAX_PAGE_SIZE as i64).contains(&page_size) {
        let size = size.map_or("undefined".to_string(), |s| s.to_string());
        return Err(ApiError::bad_request_as(
            "invalid_pagination_parameters",
            format!("Invalid pagination parameters: page number {page}, page size {size}"),
        ));
    }
    let (page, page_size) = (page as usize, page_size as usize);
    let total = items.len();
    if let Some(name) = q.name.as_deref().filter(|n| !n.is_empty()) {
        let name_of = |v: &Value| {
            v.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        if q.use_regex.as_deref() == Some("true") {
            let re = regex::Regex::new(name)
                .map_err(|_| ApiError::bad_request("Pagination parameters are invalid"))?;
            items.retain(|v| re.is_match(&name_of(v)));
        } else {
            let needle = name.to_lowercase();
            items.retain(|v| name_of(v).to_lowercase().contains(&needle));
        }
    }
    let filtered = items.len();
    let page_count = filtered.div_ceil(page_size).max(1);
    if page > page_count {
        return Err(ApiError::bad_request_as(
            "page_out_of_range",
            format!("Page out of range, page: {page} page size: {page_size}, len: {filtered}"),
        ));
    }
    let page_items: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .map(cols)
        .collect();
    Ok(json!({
        "filtered_count": filtered,
        "item_count": page_items.len(),
        "items": page_items,
        "page": page,
        "page_count": page_count,
        "page_size": page_size,
        "total_count": total,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> ListQuery {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        ListQuery {
            columns: get("columns"),
            sort: get("sort"),
            sort_reverse: get("sort_reverse"),
            page: get("page"),
            page_size: get("page_size"),
            name: get("name"),
            use_regex: get("use_regex"),
        }
    }

    #[test]
    fn columns_keep_nested_fields_under_their_parents() {
        let item = json!({"name": "a", "queue_totals": {"messages": 3, "x": 1}, "y": 2});
        assert_eq!(
            select(&item, "name,queue_totals.messages,missing"),
            json!({"name": "a", "queue_totals": {"messages": 3}})
        );
    }

    #[test]
    fn pages_count_what_the_name_filter_leaves() {
        let items: Vec<Value> = ["a1", "b1", "a2", "a3"]
            .iter()
            .map(|n| json!({"name": n}))
            .collect();
        let r = respond(
            items.clone(),
            &q(&[
                ("page", "2"),
                ("page_size", "2"),
                ("name", "a"),
                ("sort", "name"),
            ]),
        )
        .unwrap_or_else(|_| panic!("a page"));
        assert_eq!(r["items"], json!([{"name": "a3"}]));
        assert_eq!(r["filtered_count"], 3);
        assert_eq!(r["total_count"], 4);
        assert_eq!(r["page_count"], 2);
        assert!(respond(items, &q(&[("page", "3"), ("page_size", "2")])).is_err());
    }
}
