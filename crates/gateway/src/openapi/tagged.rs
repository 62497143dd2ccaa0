//! Internally tagged enums (`#[serde(tag = "type")]`, e.g. `TriggerConfig`) are documented
//! as a `oneOf` of `allOf: [$ref Variant, {type: enum}]`. A variant struct with
//! `deny_unknown_fields` gets `additionalProperties: false`, which forbids the tag, so no
//! branch could be satisfied (schemathesis found it: it could not generate a single
//! trigger body). serde takes the tag off before the variant sees the rest, so the tag is
//! an allowed property of each variant: this adds it to the variant's properties.

use utoipa::Modify;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

/// The [`Modify`] that lets each tagged variant carry its tag.
pub(super) struct TaggedVariants;

impl Modify for TaggedVariants {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let mut tags = Vec::new();
        for schema in components.schemas.values() {
            let RefOr::T(Schema::OneOf(one)) = schema else {
                continue;
            };
            tags.extend(one.items.iter().filter_map(variant_tag));
        }
        for (variant, key, tag) in tags {
            if let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut(&variant) {
                o.properties.entry(key).or_insert(tag);
            }
        }
    }
}

/// For a branch `allOf: [$ref Variant, {properties: {tag: …}}]`: the variant's schema
/// name, the tag's property name and its schema.
fn variant_tag(branch: &RefOr<Schema>) -> Option<(String, String, RefOr<Schema>)> {
    let RefOr::T(Schema::AllOf(all)) = branch else {
        return None;
    };
    let variant = all.items.iter().find_map(|i| match i {
        RefOr::Ref(r) => r.ref_location.rsplit('/').next().map(String::from),
        RefOr::T(_) => None,
    })?;
    let (key, tag) = all.items.iter().find_map(|i| match i {
        RefOr::T(Schema::Object(o)) if o.properties.len() == 1 => {
            let required = o.required.len() == 1;
            o.properties
                .iter()
                .next()
                .filter(|_| required)
                .map(|(k, v)| (k.clone(), v.clone()))
        }
        _ => None,
    })?;
    Some((variant, key, tag))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::openapi::ApiDoc;
    use utoipa::OpenApi as _;

    #[test]
    fn every_trigger_config_variant_allows_its_tag() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let branches = schemas["TriggerConfig"]["oneOf"].as_array().unwrap();
        assert_eq!(branches.len(), 6);
        let mut closed = 0;
        for b in branches {
            let r = b["allOf"][0]["$ref"].as_str().unwrap();
            let name = r.rsplit('/').next().unwrap();
            let variant = &schemas[name];
            if variant["additionalProperties"] == false {
                closed += 1;
                assert!(
                    variant["properties"].get("type").is_some(),
                    "{name} forbids its own tag: {variant}"
                );
            }
        }
        assert!(closed > 0, "no variant denies unknown fields any more");
    }
}
