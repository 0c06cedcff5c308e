//! Every route the gateway serves, as a closed set: which front end answers
//! it, its template (for logs and metric labels, so a caller cannot mint new
//! label values), and the path parameters it captured.

use http::Method;

/// Which front end (and so which error dialect) answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Cloud Foundry v2 (and the unauthenticated documents around it).
    Cf,
    /// Cloud Foundry v3.
    CfV3,
    Gcore,
    /// `/healthz`, `/readyz`, `/metrics`.
    Ops,
    /// `/_emulator/…`: the embedded backend's controls (admin listener only).
    Emulator,
    /// `/ui/…`: the page for people (admin listener, when one is set).
    Ui,
}

impl Dialect {
    pub fn label(self) -> &'static str {
        match self {
            Dialect::Cf => "cf",
            Dialect::CfV3 => "cf_v3",
            Dialect::Gcore => "gcore",
            Dialect::Ops => "ops",
            Dialect::Emulator => "emulator",
            Dialect::Ui => "ui",
        }
    }
}

macro_rules! routes {
    ($($name:ident => $dialect:ident, $template:literal;)*) => {
        /// A route, by template.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum RouteId { $($name,)* }

        impl RouteId {
            /// Every route, in the table's order.
            #[cfg(test)]
            const ALL: &'static [RouteId] = &[$(RouteId::$name,)*];

            pub fn template(self) -> &'static str {
                match self { $(RouteId::$name => $template,)* }
            }

            pub fn dialect(self) -> Dialect {
                match self { $(RouteId::$name => Dialect::$dialect,)* }
            }
        }
    };
}

routes! {
    Healthz => Ops, "/healthz";
    Readyz => Ops, "/readyz";
    Metrics => Ops, "/metrics";
    CfRoot => Cf, "/";
    CfInfo => Cf, "/v2/info";
    CfLogin => Cf, "/login";
    OauthToken => Cf, "/oauth/token";
    TokenKeys => Cf, "/token_keys";
    TokenKey => Cf, "/token_key";
    UserInfo => Cf, "/userinfo";
    CfGroups => Cf, "/v2/security_groups";
    CfGroup => Cf, "/v2/security_groups/:guid";
    CfGroupSpaces => Cf, "/v2/security_groups/:guid/:relation";
    CfGroupSpace => Cf, "/v2/security_groups/:guid/:relation/:space_guid";
    CfDefaults => Cf, "/v2/config/:lifecycle_security_groups";
    CfDefault => Cf, "/v2/config/:lifecycle_security_groups/:guid";
    CfSpaceGroups => Cf, "/v2/spaces/:guid/:relation";
    CfSpaceGroup => Cf, "/v2/spaces/:guid/:relation/:sg_guid";
    CfJob => Cf, "/v2/jobs/:guid";
    CfOrgs => Cf, "/v2/organizations";
    CfOrg => Cf, "/v2/organizations/:guid";
    CfOrgSpaces => Cf, "/v2/organizations/:guid/spaces";
    CfSpaces => Cf, "/v2/spaces";
    CfSpace => Cf, "/v2/spaces/:guid";
    CfOther => Cf, "(unknown)";
    V3Root => CfV3, "/v3";
    V3Groups => CfV3, "/v3/security_groups";
    V3Group => CfV3, "/v3/security_groups/:guid";
    V3GroupSpaces => CfV3, "/v3/security_groups/:guid/relationships/:relation";
    V3GroupSpace => CfV3, "/v3/security_groups/:guid/relationships/:relation/:space_guid";
    V3SpaceGroups => CfV3, "/v3/spaces/:guid/:lifecycle_security_groups";
    V3Orgs => CfV3, "/v3/organizations";
    V3Org => CfV3, "/v3/organizations/:guid";
    V3Spaces => CfV3, "/v3/spaces";
    V3Space => CfV3, "/v3/spaces/:guid";
    V3Job => CfV3, "/v3/jobs/:guid";
    V3AuditEvents => CfV3, "/v3/audit_events";
    V3AuditEvent => CfV3, "/v3/audit_events/:guid";
    V3Other => CfV3, "/v3/(unknown)";
    GcoreCreate => Gcore, "/cloud/v2/security_groups/:project_id/:region_id";
    GcorePatch => Gcore, "/cloud/v2/security_groups/:project_id/:region_id/:group_id";
    GcoreRules => Gcore, "/cloud/v2/security_groups/:project_id/:region_id/:group_id/rules";
    GcoreRule => Gcore, "/cloud/v2/security_groups/:project_id/:region_id/:group_id/rules/:rule_id";
    GcoreList => Gcore, "/cloud/v1/securitygroups/:project_id/:region_id";
    GcoreGroup => Gcore, "/cloud/v1/securitygroups/:project_id/:region_id/:group_id";
    GcoreCopy => Gcore, "/cloud/v1/securitygroups/:project_id/:region_id/:group_id/copy";
    GcoreRevert => Gcore, "/cloud/v1/securitygroups/:project_id/:region_id/:group_id/revert";
    GcoreV1Rule => Gcore, "/cloud/v1/securitygrouprules/:project_id/:region_id/:rule_id";
    GcoreTasks => Gcore, "/cloud/v1/tasks";
    GcoreTask => Gcore, "/cloud/v1/tasks/:task_id";
    GcoreTaskAck => Gcore, "/cloud/v1/tasks/:task_id/acknowledge";
    GcoreTaskAckAll => Gcore, "/cloud/v1/tasks/acknowledge_all";
    GcoreOther => Gcore, "/cloud/(unknown)";
    EmulatorFaults => Emulator, "/_emulator/faults";
    EmulatorReset => Emulator, "/_emulator/reset";
    EmulatorState => Emulator, "/_emulator/state";
    EmulatorTiming => Emulator, "/_emulator/timing";
    EmulatorOther => Emulator, "/_emulator/(unknown)";
    UiHome => Ui, "/ui/";
    UiLogin => Ui, "/ui/login";
    UiLogout => Ui, "/ui/logout";
    UiGroups => Ui, "/ui/groups";
    UiGroup => Ui, "/ui/groups/:project_id/:region_id/:group_id";
    UiChanges => Ui, "/ui/changes";
    UiTasks => Ui, "/ui/tasks";
    UiAsset => Ui, "/ui/assets/:name";
    UiOther => Ui, "/ui/(unknown)";
}

/// A classified request: the route and the path parameters it captured, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub id: RouteId,
    pub params: Vec<String>,
}

impl Route {
    fn new(id: RouteId, params: &[&str]) -> Self {
        Route {
            id,
            params: params.iter().map(|p| p.to_string()).collect(),
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.id.dialect()
    }

    /// The `i`th captured parameter.
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }

    /// Whether the ops endpoints answer this method (GET and HEAD only).
    pub fn ops_method(method: &Method) -> bool {
        method == Method::GET || method == Method::HEAD
    }
}

/// Classify a path. Methods are the front end's business: a known path with
/// a method it does not serve is its 404 or 405.
pub fn classify(path: &str) -> Route {
    use RouteId as R;
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let r = |id, params: &[&str]| Route::new(id, params);
    match segs.as_slice() {
        ["healthz"] => r(R::Healthz, &[]),
        ["readyz"] => r(R::Readyz, &[]),
        ["metrics"] => r(R::Metrics, &[]),
        [""] => r(R::CfRoot, &[]),
        ["login"] => r(R::CfLogin, &[]),
        ["oauth", "token"] => r(R::OauthToken, &[]),
        ["token_keys"] => r(R::TokenKeys, &[]),
        ["token_key"] => r(R::TokenKey, &[]),
        ["userinfo"] => r(R::UserInfo, &[]),
        ["v2", "info"] => r(R::CfInfo, &[]),
        ["v2", "security_groups"] => r(R::CfGroups, &[]),
        ["v2", "security_groups", g] => r(R::CfGroup, &[g]),
        ["v2", "security_groups", g, rel @ ("spaces" | "staging_spaces")] => r(R::CfGroupSpaces, &[g, rel]),
        ["v2", "security_groups", g, rel @ ("spaces" | "staging_spaces"), s] => r(R::CfGroupSpace, &[g, rel, s]),
        ["v2", "config", k @ ("running_security_groups" | "staging_security_groups")] => r(R::CfDefaults, &[k]),
        ["v2", "config", k @ ("running_security_groups" | "staging_security_groups"), g] => r(R::CfDefault, &[k, g]),
        ["v2", "spaces", s, rel @ ("security_groups" | "staging_security_groups")] => r(R::CfSpaceGroups, &[s, rel]),
        ["v2", "spaces", s, rel @ ("security_groups" | "staging_security_groups"), g] => {
            r(R::CfSpaceGroup, &[s, rel, g])
        }
        ["v2", "jobs", j] => r(R::CfJob, &[j]),
        ["v2", "organizations"] => r(R::CfOrgs, &[]),
        ["v2", "organizations", o] => r(R::CfOrg, &[o]),
        ["v2", "organizations", o, "spaces"] => r(R::CfOrgSpaces, &[o]),
        ["v2", "spaces"] => r(R::CfSpaces, &[]),
        ["v2", "spaces", s] => r(R::CfSpace, &[s]),
        ["v3"] => r(R::V3Root, &[]),
        ["v3", "security_groups"] => r(R::V3Groups, &[]),
        ["v3", "security_groups", g] => r(R::V3Group, &[g]),
        ["v3", "security_groups", g, "relationships", rel @ ("running_spaces" | "staging_spaces")] => {
            r(R::V3GroupSpaces, &[g, rel])
        }
        ["v3", "security_groups", g, "relationships", rel @ ("running_spaces" | "staging_spaces"), s] => {
            r(R::V3GroupSpace, &[g, rel, s])
        }
        ["v3", "spaces", s, k @ ("running_security_groups" | "staging_security_groups")] => {
            r(R::V3SpaceGroups, &[s, k])
        }
        ["v3", "organizations"] => r(R::V3Orgs, &[]),
        ["v3", "organizations", o] => r(R::V3Org, &[o]),
        ["v3", "spaces"] => r(R::V3Spaces, &[]),
        ["v3", "spaces", s] => r(R::V3Space, &[s]),
        ["v3", "jobs", j] => r(R::V3Job, &[j]),
        ["v3", "audit_events"] => r(R::V3AuditEvents, &[]),
        ["v3", "audit_events", e] => r(R::V3AuditEvent, &[e]),
        ["v3", ..] => r(R::V3Other, &[]),
        ["cloud", "v2", "security_groups", p, rg] => r(R::GcoreCreate, &[p, rg]),
        ["cloud", "v2", "security_groups", p, rg, g] => r(R::GcorePatch, &[p, rg, g]),
        ["cloud", "v2", "security_groups", p, rg, g, "rules"] => r(R::GcoreRules, &[p, rg, g]),
        ["cloud", "v2", "security_groups", p, rg, g, "rules", rule] => r(R::GcoreRule, &[p, rg, g, rule]),
        ["cloud", "v1", "securitygroups", p, rg] => r(R::GcoreList, &[p, rg]),
        ["cloud", "v1", "securitygroups", p, rg, g] => r(R::GcoreGroup, &[p, rg, g]),
        ["cloud", "v1", "securitygroups", p, rg, g, "copy"] => r(R::GcoreCopy, &[p, rg, g]),
        ["cloud", "v1", "securitygroups", p, rg, g, "revert"] => r(R::GcoreRevert, &[p, rg, g]),
        ["cloud", "v1", "securitygrouprules", p, rg, rule] => r(R::GcoreV1Rule, &[p, rg, rule]),
        ["cloud", "v1", "tasks"] => r(R::GcoreTasks, &[]),
        ["cloud", "v1", "tasks", "acknowledge_all"] => r(R::GcoreTaskAckAll, &[]),
        ["cloud", "v1", "tasks", t] => r(R::GcoreTask, &[t]),
        ["cloud", "v1", "tasks", t, "acknowledge"] => r(R::GcoreTaskAck, &[t]),
        ["cloud", ..] => r(R::GcoreOther, &[]),
        ["_emulator", "faults"] => r(R::EmulatorFaults, &[]),
        ["_emulator", "reset"] => r(R::EmulatorReset, &[]),
        ["_emulator", "state"] => r(R::EmulatorState, &[]),
        ["_emulator", "timing"] => r(R::EmulatorTiming, &[]),
        ["_emulator", ..] => r(R::EmulatorOther, &[]),
        ["ui"] => r(R::UiHome, &[]),
        ["ui", "login"] => r(R::UiLogin, &[]),
        ["ui", "logout"] => r(R::UiLogout, &[]),
        ["ui", "groups"] => r(R::UiGroups, &[]),
        ["ui", "groups", p, rg, g] => r(R::UiGroup, &[p, rg, g]),
        ["ui", "changes"] => r(R::UiChanges, &[]),
        ["ui", "tasks"] => r(R::UiTasks, &[]),
        ["ui", "assets", a] => r(R::UiAsset, &[a]),
        ["ui", ..] => r(R::UiOther, &[]),
        _ => r(R::CfOther, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path for `template`: each `:param` filled with a value its pattern
    /// in [`classify`] takes (the few constrained ones named per route).
    fn sample(id: RouteId) -> Option<String> {
        let fixed: &[(&str, &str)] = match id {
            RouteId::CfOther | RouteId::V3Other | RouteId::GcoreOther | RouteId::EmulatorOther | RouteId::UiOther => {
                return None
            }
            RouteId::CfGroupSpaces | RouteId::CfGroupSpace => &[(":relation", "staging_spaces")],
            RouteId::CfSpaceGroups | RouteId::CfSpaceGroup => &[(":relation", "staging_security_groups")],
            RouteId::V3GroupSpaces | RouteId::V3GroupSpace => &[(":relation", "running_spaces")],
            _ => &[],
        };
        let filled = id
            .template()
            .split('/')
            .map(|seg| match seg {
                ":lifecycle_security_groups" => "staging_security_groups".to_string(),
                s if s.starts_with(':') => fixed
                    .iter()
                    .find(|(k, _)| *k == s)
                    .map_or_else(|| format!("x{}", s.len()), |(_, v)| v.to_string()),
                s => s.to_string(),
            })
            .collect::<Vec<_>>()
            .join("/");
        Some(filled)
    }

    /// Each route is written twice (its template, its pattern): a path made
    /// from every template classifies back to that route, with one
    /// parameter per `:param`.
    #[test]
    fn every_template_classifies_to_its_own_route() {
        for &id in RouteId::ALL {
            let Some(path) = sample(id) else { continue };
            let route = classify(&path);
            assert_eq!(route.id, id, "{path} (template {})", id.template());
            assert_eq!(route.params.len(), id.template().matches(':').count(), "{path}");
        }
    }

    #[test]
    fn paths_classify_to_templates() {
        let r = classify("/v2/security_groups/abc/staging_spaces/def");
        assert_eq!(r.id, RouteId::CfGroupSpace);
        assert_eq!(r.params, ["abc", "staging_spaces", "def"]);
        assert_eq!(classify("/cloud/v1/tasks/acknowledge_all").id, RouteId::GcoreTaskAckAll);
        assert_eq!(classify("/cloud/v1/tasks/x/acknowledge").id, RouteId::GcoreTaskAck);
        assert_eq!(classify("/cloud/anything/else").dialect(), Dialect::Gcore);
        assert_eq!(classify("/random/made/up/path").id, RouteId::CfOther);
        assert_eq!(classify("/v3/whatever").id, RouteId::V3Other);
        assert_eq!(classify("/").id, RouteId::CfRoot);
    }
}
