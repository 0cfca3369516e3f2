"""The openstack target under Pulumi mocks: the resources a Kommune tenant gets, and how.

The OpenStack API is not reachable here; pulumi.runtime.set_mocks records every resource the
program registers with its inputs, and the tests check isolation, quotas, ranges and tags.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from local_program import vpn_service

from basisit import addressing
from basisit.contracts import stack_outputs as outputs
from stacks.model import PlanError, build_plan
from stacks.targets.openstack import OpenStackSettings, OpenStackTarget
from stacks.tenant import KommuneTenant

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "desired-state-10046118.yaml"
AUTH_URL = "https://keystone.ego-saar.example:5000/v3"
SETTINGS = OpenStackSettings(
    operators_group="ego-saar-ops",
    operator_roles=("member", "load-balancer_member"),
    image="Debian 12 (SCS)",
    operators_cidr="172.31.250.0/24",
    auth_url=AUTH_URL,
    region="RegionOne",
)
CREDENTIAL = "openstack:identity/applicationCredential:ApplicationCredential"
FLOATING_IP = "openstack:networking/floatingIp:FloatingIp"
PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForMocksOnly basisit-test"


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]
    provider: str
    id: str


class Recorder(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[Registered] = []
        self.floating_addresses: dict[str, str] = {}  # resource name -> allocated address

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        rid = f"id-{args.name}"
        self.resources.append(
            Registered(args.typ, args.name, dict(args.inputs), args.provider or "", rid)
        )
        state = dict(args.inputs)
        if args.typ == CREDENTIAL:
            # As Keystone does: the secret is generated when none is given, and the credential
            # belongs to the project the provider's token is scoped to.
            state["secret"] = f"keystone-made-secret-of-{args.name}"
            state["projectId"] = self.provider_of(args.provider or "").inputs.get("tenantId")
        if args.typ == FLOATING_IP:
            # As Neutron does: the address comes from the external network's pool.
            state["address"] = f"203.0.113.{len(self.of(FLOATING_IP))}"
            self.floating_addresses[args.name] = state["address"]
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        name = args.args.get("name")
        if args.token == "openstack:identity/getGroup:getGroup":
            return {"id": f"group-{name}", "name": name}
        if args.token == "openstack:identity/getRole:getRole":
            return {"id": f"role-{name}", "name": name}
        if args.token == "openstack:networking/getNetwork:getNetwork":
            return {"id": f"extnet-{name}", "name": name}
        raise AssertionError(f"unexpected invoke {args.token}")

    def of(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def provider_of(self, ref: str) -> Registered:
        """The provider resource a resource was created with ("<urn>::<id>")."""
        rid = ref.rsplit("::", 1)[-1]
        (found,) = [r for r in self.of("pulumi:providers:openstack") if r.id == rid]
        return found

    def one(self, typ: str) -> Registered:
        found = self.of(typ)
        assert len(found) == 1, f"expected one {typ}, got {[r.name for r in found]}"
        return found[0]


def run_program(
    desired: dict[str, Any], settings: OpenStackSettings = SETTINGS
) -> tuple[Recorder, dict[str, Any]]:
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project="basisit", stack=desired["ags"], preview=False)
    hosts = addressing.assign_hosts([s["instance"] for s in desired["services"] if s["server"]], {})
    result: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output:
        plan = build_plan(desired, hosts)
        tenant = KommuneTenant(plan, OpenStackTarget(settings, PUBKEY))
        return tenant.outputs.apply(result.update)

    program()
    return recorder, result


def load_fixture() -> dict[str, Any]:
    return yaml.safe_load(FIXTURE.read_text())


@pytest.fixture(scope="module")
def tholey() -> tuple[Recorder, dict[str, Any]]:
    return run_program(load_fixture())


def test_project_per_kommune_with_operators_group(tholey) -> None:
    rec, _ = tholey
    project = rec.one("openstack:identity/project:Project")
    assert project.inputs["name"] == "basisit-10046118-tholey"
    assert "ags=10046118" in project.inputs["tags"]
    assignments = rec.of("openstack:identity/roleAssignment:RoleAssignment")
    assert {a.inputs["roleId"] for a in assignments} == {"role-member", "role-load-balancer_member"}
    for a in assignments:
        assert a.inputs["groupId"] == "group-ego-saar-ops"
        assert a.inputs["projectId"] == project.id


def test_quotas_are_the_sum_of_the_plans(tholey) -> None:
    rec, _ = tholey
    desired = load_fixture()
    servers = [s["server"] for s in desired["services"] if s["server"]]
    volumes = [v for s in desired["services"] for v in s["volumes"]]
    project_id = rec.one("openstack:identity/project:Project").id

    compute = rec.one("openstack:compute/quotaSetV2:QuotaSetV2").inputs
    assert compute["projectId"] == project_id
    assert compute["instances"] == len(servers) == 3
    assert compute["cores"] == sum(s["vcpus"] for s in servers)
    assert compute["ram"] == sum(s["ram_mib"] for s in servers)

    volume = rec.one("openstack:blockstorage/quoteSetV3:QuoteSetV3").inputs
    assert volume["gigabytes"] == sum(v["size_gib"] for v in volumes) == 3
    assert volume["volumes"] == len(volumes)

    network = rec.one("openstack:networking/quotaV2:QuotaV2").inputs
    assert network["network"] == network["subnet"] == network["router"] == 1
    assert network["floatingip"] == 0  # nothing of a Kommune is reachable from outside
    rules = rec.of("openstack:networking/secGroupRule:SecGroupRule")
    assert network["securityGroupRule"] >= len(rules)

    dns = rec.one("openstack:dns/quotaV2:QuotaV2").inputs
    assert dns["zones"] == 1


def test_network_in_the_kommune_range(tholey) -> None:
    rec, _ = tholey
    subnet = rec.one("openstack:networking/subnet:Subnet").inputs
    assert subnet["cidr"] == "10.24.118.0/24" == str(addressing.kommune_subnet("10046118"))
    assert subnet["gatewayIp"] == "10.24.118.1"
    net = ipaddress.ip_network(subnet["cidr"])
    for pool in subnet["allocationPools"]:
        assert ipaddress.ip_address(pool["start"]) in net
        assert ipaddress.ip_address(pool["end"]) in net
    router = rec.one("openstack:networking/router:Router").inputs
    assert router["externalNetworkId"] == "extnet-public"
    iface = rec.one("openstack:networking/routerInterface:RouterInterface").inputs
    assert iface["subnetId"] == "id-basisit-10046118-subnet"


def test_security_groups_admit_only_the_desired_ports_from_the_own_network(tholey) -> None:
    rec, _ = tholey
    groups = {g.id: g for g in rec.of("openstack:networking/secGroup:SecGroup")}
    assert len(groups) == 3
    assert all(g.inputs["deleteDefaultRules"] is True for g in groups.values())
    desired = {s["instance"]: s for s in load_fixture()["services"]}
    for gid, group in groups.items():
        instance = group.inputs["name"].removeprefix("basisit-10046118-")
        rules = [
            r.inputs
            for r in rec.of("openstack:networking/secGroupRule:SecGroupRule")
            if r.inputs["securityGroupId"] == gid
        ]
        ingress = [r for r in rules if r["direction"] == "ingress"]
        from_kommune = {
            (int(r["portRangeMin"]), r["protocol"])
            for r in ingress
            if r["remoteIpPrefix"] == "10.24.118.0/24"
        }
        wanted = {(p["port"], p["protocol"]) for p in desired[instance]["ports"]}
        assert from_kommune == wanted
        others = [r for r in ingress if r["remoteIpPrefix"] != "10.24.118.0/24"]
        # the rest is management from the operators' network, nothing from anywhere
        assert {r["remoteIpPrefix"] for r in others} == {SETTINGS.operators_cidr}
        assert {int(r["portRangeMin"]) for r in others} == {22, 9100}
        assert all(r["portRangeMin"] == r["portRangeMax"] for r in ingress)
        egress_any = [r for r in rules if r["direction"] == "egress" and "protocol" not in r]
        assert {r["remoteIpPrefix"] for r in egress_any} == {
            "10.24.118.0/24",
            SETTINGS.operators_cidr,
        }


def test_servers_use_scs_flavors_standard_image_fixed_addresses_and_tags(tholey) -> None:
    rec, _ = tholey
    desired = {s["instance"]: s for s in load_fixture()["services"]}
    scoped = [p for p in rec.of("pulumi:providers:openstack") if "tenantId" in p.inputs]
    assert len(scoped) == 1
    assert scoped[0].inputs["tenantId"] == rec.one("openstack:identity/project:Project").id
    instances = rec.of("openstack:compute/instance:Instance")
    assert {i.inputs["name"] for i in instances} == set(desired)
    subnet = addressing.kommune_subnet("10046118")
    addresses = set()
    for inst in instances:
        svc = desired[inst.inputs["name"]]
        assert inst.inputs["flavorName"] == svc["server"]["flavor"]
        assert inst.inputs["imageName"] == SETTINGS.image
        assert inst.inputs["keyPair"] == "basisit-10046118"
        assert inst.inputs["securityGroups"] == [f"basisit-10046118-{svc['instance']}"]
        (nic,) = inst.inputs["networks"]
        assert nic["uuid"] == "id-basisit-10046118-net"
        assert ipaddress.ip_address(nic["fixedIpV4"]) in subnet
        addresses.add(nic["fixedIpV4"])
        assert inst.inputs["metadata"]["ags"] == "10046118"
        assert inst.inputs["metadata"]["catalog_service"] == svc["service"]
        assert f"catalog_service={svc['service']}" in inst.inputs["tags"]
        # created inside the Kommune's project, not the admin project
        assert inst.provider.split("::")[-2] == "basisit-10046118-scoped"
    assert len(addresses) == len(instances)


def test_volumes_are_created_and_attached(tholey) -> None:
    rec, _ = tholey
    volumes = {v.inputs["name"]: v for v in rec.of("openstack:blockstorage/volume:Volume")}
    assert {n: v.inputs["size"] for n, v in volumes.items()} == {
        "basisit-10046118-dateiablage-share": 1,
        "basisit-10046118-sicherung-repo": 2,
    }
    attaches = {
        (a.inputs["instanceId"], a.inputs["volumeId"])
        for a in rec.of("openstack:compute/volumeAttach:VolumeAttach")
    }
    assert attaches == {
        ("id-basisit-10046118-dateiablage-server", "id-basisit-10046118-dateiablage-vol-share"),
        ("id-basisit-10046118-sicherung-server", "id-basisit-10046118-sicherung-vol-repo"),
    }


def test_dns_zone_records_and_object_storage(tholey) -> None:
    rec, out = tholey
    zone = rec.one("openstack:dns/zone:Zone")
    assert zone.inputs["name"] == "tholey.basisit.internal."
    records = {
        r.inputs["name"]: r.inputs["records"] for r in rec.of("openstack:dns/recordSet:RecordSet")
    }
    by_name = {s["name"]: s["address"] for s in out["servers"]}
    assert records == {f"{n}.tholey.basisit.internal.": [a] for n, a in by_name.items()}
    (container,) = rec.of("openstack:objectstorage/container:Container")
    assert container.inputs["metadata"] == {
        "ags": "10046118",
        "catalog_service": "backup",
        "instance": "sicherung",
    }
    assert out["object_storage"] == {"container": container.inputs["name"]}


def test_every_taggable_resource_names_its_kommune(tholey) -> None:
    rec, _ = tholey
    tagged = [r for r in rec.resources if "tags" in r.inputs]
    assert len(tagged) >= 8
    assert all("ags=10046118" in r.inputs["tags"] for r in tagged)
    with_metadata = [r for r in rec.resources if "metadata" in r.inputs]
    assert all(r.inputs["metadata"]["ags"] == "10046118" for r in with_metadata)


def test_outputs_match_contract_2(tholey) -> None:
    _, out = tholey
    doc = outputs.document(out)
    assert outputs.problems(doc) == []
    assert doc["target"] == "openstack"
    assert doc["network"]["cidr"] == "10.24.118.0/24"
    assert {s["ssh"]["host"] for s in doc["servers"]} == {s["address"] for s in doc["servers"]}
    assert doc["kommune"] == {"name": "Tholey", "slug": "tholey"}
    # Prometheus runs inside the platform: it scrapes the private address directly.
    for server in doc["servers"]:
        assert server["metrics"] == {
            "address": server["address"],
            "port": 9100,
            "path": "/metrics",
            "sources": [SETTINGS.operators_cidr],
        }


def test_two_kommunen_admit_only_their_own_networks() -> None:
    tholey = load_fixture()
    other = copy.deepcopy(tholey)
    other["ags"] = "10041100"
    other["kommune"] = {
        "name": "Saarbrücken",
        "typ": "Stadt",
        "kreis": "RV",
        "slug": "saarbruecken",
    }
    other["dns_zone"] = "saarbruecken.basisit.internal."
    cidrs = {}
    for desired in (tholey, other):
        rec, _ = run_program(desired)
        ingress = [
            r.inputs["remoteIpPrefix"]
            for r in rec.of("openstack:networking/secGroupRule:SecGroupRule")
            if r.inputs["direction"] == "ingress"
        ]
        cidrs[desired["ags"]] = set(ingress) - {SETTINGS.operators_cidr}
    assert cidrs == {"10046118": {"10.24.118.0/24"}, "10041100": {"10.4.100.0/24"}}


def test_port_sources_any_and_operators() -> None:
    desired = load_fixture()
    desired["services"][0]["ports"] = [
        {"port": 443, "protocol": "tcp", "source": "any"},
        {"port": 8443, "protocol": "tcp", "source": "operators"},
    ]
    rec, _ = run_program(desired)
    rules = {
        (int(r.inputs["portRangeMin"]), r.inputs["remoteIpPrefix"])
        for r in rec.of("openstack:networking/secGroupRule:SecGroupRule")
        if r.inputs["direction"] == "ingress"
        and r.inputs["securityGroupId"] == "id-basisit-10046118-dns-sg"
    }
    assert (443, "0.0.0.0/0") in rules
    assert (8443, SETTINGS.operators_cidr) in rules
    assert all(cidr != "0.0.0.0/0" for port, cidr in rules if port != 443)


def rules_of(rec: Recorder, instance: str) -> list[dict[str, Any]]:
    gid = f"id-basisit-10046118-{instance}-sg"
    return [
        r.inputs
        for r in rec.of("openstack:networking/secGroupRule:SecGroupRule")
        if r.inputs["securityGroupId"] == gid
    ]


def test_node_exporter_is_open_to_the_monitoring_network_only() -> None:
    monitoring = "172.31.251.0/28"
    settings = dataclasses.replace(SETTINGS, monitoring_cidr=monitoring)
    rec, out = run_program(load_fixture(), settings)
    for instance in ("dns", "dateiablage", "sicherung"):
        ingress = [r for r in rules_of(rec, instance) if r["direction"] == "ingress"]
        exporter = {r["remoteIpPrefix"] for r in ingress if int(r["portRangeMin"]) == 9100}
        assert exporter == {monitoring}, instance
        # SSH stays with the operators (and the Kommune where the catalog says so).
        ssh = {r["remoteIpPrefix"] for r in ingress if int(r["portRangeMin"]) == 22}
        assert SETTINGS.operators_cidr in ssh and monitoring not in ssh, instance
        assert "0.0.0.0/0" not in {r["remoteIpPrefix"] for r in ingress}, instance
    # The servers' host firewalls open the exporter to the same network (via the inventory).
    assert {tuple(s["metrics"]["sources"]) for s in out["servers"]} == {(monitoring,)}
    quota = rec.one("openstack:networking/quotaV2:QuotaV2").inputs
    rules = rec.of("openstack:networking/secGroupRule:SecGroupRule")
    assert quota["securityGroupRule"] >= len(rules)


def test_a_bad_monitoring_cidr_is_refused_naming_the_setting() -> None:
    settings = OpenStackSettings.from_env({"BASISIT_OS_MONITORING_CIDR": "172.31.251.7/24"})
    with pytest.raises(PlanError, match=r"BASISIT_OS_MONITORING_CIDR='172\.31\.251\.7/24'"):
        settings.scrapers  # noqa: B018


def test_scrape_targets_of_an_openstack_kommune(tholey) -> None:
    from basisit.monitoring import targets

    _, out = tholey
    found = targets.target_groups([outputs.document(out)])
    assert found.notes == []
    by_server = {g["labels"]["server"]: g for g in found.groups}
    addresses = {s["name"]: s["address"] for s in out["servers"]}
    assert {n: g["targets"] for n, g in by_server.items()} == {
        n: [f"{a}:9100"] for n, a in addresses.items()
    }
    assert by_server["dns"]["labels"] == {
        "ags": "10046118",
        "kommune": "Tholey",
        "server": "dns",
        "catalog_service": "dns",
        "__metrics_path__": "/metrics",
    }


# -- the backup credential ---------------------------------------------------------------------


def run_stack(
    desired: dict[str, Any], settings: OpenStackSettings = SETTINGS
) -> tuple[Recorder, dict[str, tuple[Any, bool]]]:
    """The inline program as the driver runs it; every stack output with whether it is secret."""
    from pulumi.runtime.settings import get_root_resource

    from stacks import tenant

    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project="basisit", stack=desired["ags"], preview=False)
    hosts = addressing.assign_hosts([s["instance"] for s in desired["services"] if s["server"]], {})
    exported: dict[str, tuple[Any, bool]] = {}
    root = get_root_resource()
    assert root is not None
    # set_mocks keeps the root stack of the process's first run: start without its exports.
    root.outputs.clear()  # type: ignore[attr-defined]

    async def collect() -> None:
        for name, value in root.outputs.items():  # type: ignore[attr-defined]
            out = pulumi.Output.from_input(value)
            exported[name] = (await out.future(), await out.is_secret())

    @pulumi.runtime.test
    def program() -> Any:
        tenant.program(
            desired,
            target="openstack",
            settings=settings,
            hosts=hosts,
            ports=None,
            prefix="basisit",
            ssh_public_key=PUBKEY,
        )()
        return asyncio.ensure_future(collect())

    program()
    return recorder, exported


def access_rules(credential: Registered) -> set[tuple[str, str, str]]:
    rules = credential.inputs.get("accessRules", [])
    return {(r["service"], r["method"], r["path"]) for r in rules}


def test_backup_credential_in_the_kommunes_project_for_its_container_only(tholey) -> None:
    rec, _ = tholey
    credential = rec.one(CREDENTIAL)
    project = rec.one("openstack:identity/project:Project")
    # Made with the provider scoped to the Kommune's project: Keystone binds it to that project.
    provider = rec.provider_of(credential.provider)
    assert provider.name == "basisit-10046118-scoped"
    assert provider.inputs["tenantId"] == project.id
    assert credential.inputs["name"] == "basisit-10046118-backup"
    assert credential.inputs["unrestricted"] is False
    assert credential.inputs["roles"] == ["member"]  # not every role its owner has
    assert "secret" not in credential.inputs  # Keystone generates it; never in the program
    container = rec.one("openstack:objectstorage/container:Container").inputs["name"]
    assert container == "basisit-10046118-sicherung"
    assert access_rules(credential) == {
        ("object-store", "GET", f"/v1/*/{container}"),
        ("object-store", "HEAD", f"/v1/*/{container}"),
        ("object-store", "GET", f"/v1/*/{container}/**"),
        ("object-store", "HEAD", f"/v1/*/{container}/**"),
        ("object-store", "PUT", f"/v1/*/{container}/**"),
        ("object-store", "DELETE", f"/v1/*/{container}/**"),
    }


def test_backup_credential_is_a_secret_stack_output_apart_from_contract_2() -> None:
    rec, exported = run_stack(load_fixture())
    value, secret = exported["backup_credential"]
    assert secret is True
    assert value == {
        "auth_url": AUTH_URL,
        "region": "RegionOne",
        "id": "id-basisit-10046118-backup-credential",
        "secret": "keystone-made-secret-of-basisit-10046118-backup-credential",
    }
    contract, contract_secret = exported["outputs"]
    assert contract_secret is False  # a plain file for inventory and scrape targets
    assert value["secret"] not in json.dumps(contract)
    assert value["id"] not in json.dumps(contract)
    assert contract["object_storage"] == {"container": "basisit-10046118-sicherung"}
    assert outputs.problems(outputs.document(contract)) == []
    # The credential is the project's, the one the container is in.
    project = rec.one("openstack:identity/project:Project")
    assert rec.one(CREDENTIAL).id == value["id"]
    assert rec.provider_of(rec.one(CREDENTIAL).provider).inputs["tenantId"] == project.id


def test_no_backup_credential_without_object_storage() -> None:
    desired = load_fixture()
    desired["services"] = [s for s in desired["services"] if s["service"] != "backup"]
    rec, exported = run_stack(desired)
    assert rec.of(CREDENTIAL) == []
    assert rec.of("openstack:objectstorage/container:Container") == []
    assert "backup_credential" not in exported
    assert exported["outputs"][0]["object_storage"] is None
    # Without object storage Keystone's URL is not needed at all.
    rec, exported = run_stack(desired, dataclasses.replace(SETTINGS, auth_url=""))
    assert rec.of(CREDENTIAL) == [] and "backup_credential" not in exported


def test_one_backup_credential_per_kommune_covering_its_containers() -> None:
    desired = load_fixture()
    for svc in desired["services"]:
        if svc["instance"] == "dateiablage":
            svc["object_storage"] = True  # a second container in the same Kommune
    rec, _ = run_program(desired)
    containers = {c.inputs["name"] for c in rec.of("openstack:objectstorage/container:Container")}
    assert containers == {"basisit-10046118-sicherung", "basisit-10046118-dateiablage"}
    paths = {path for _, _, path in access_rules(rec.one(CREDENTIAL))}
    assert paths == {f"/v1/*/{c}{tail}" for c in containers for tail in ("", "/**")}

    other = load_fixture()
    other["ags"] = "10041100"
    other["kommune"] = {"name": "Saarbrücken", "typ": "Stadt", "kreis": "RV", "slug": "sb"}
    other["dns_zone"] = "sb.basisit.internal."
    rec, exported = run_stack(other)
    credential = rec.one(CREDENTIAL)
    assert credential.inputs["name"] == "basisit-10041100-backup"
    assert rec.provider_of(credential.provider).inputs["tenantId"] == "id-basisit-10041100-project"
    assert {path for _, _, path in access_rules(credential)} == {
        "/v1/*/basisit-10041100-sicherung",
        "/v1/*/basisit-10041100-sicherung/**",
    }
    assert exported["backup_credential"][1] is True


def test_backup_credential_without_access_rules_where_the_object_store_cannot_check_them() -> None:
    settings = dataclasses.replace(SETTINGS, backup_access_rules=False, backup_roles=("backup",))
    rec, exported = run_stack(load_fixture(), settings)
    credential = rec.one(CREDENTIAL)
    assert "accessRules" not in credential.inputs
    assert credential.inputs["roles"] == ["backup"]
    assert credential.inputs["unrestricted"] is False
    assert exported["backup_credential"][1] is True


def test_backup_settings_from_the_environment() -> None:
    settings = OpenStackSettings.from_env(
        {
            "BASISIT_OS_AUTH_URL": AUTH_URL,
            "BASISIT_OS_REGION": "RegionTwo",
            "BASISIT_OS_BACKUP_ROLES": "swiftoperator, reader",
            "BASISIT_OS_BACKUP_ACCESS_RULES": "no",
        }
    )
    assert settings.backup_auth_url() == AUTH_URL
    assert settings.region == "RegionTwo"
    assert settings.backup_roles == ("swiftoperator", "reader")
    assert settings.backup_access_rules is False
    defaults = OpenStackSettings.from_env({})
    assert defaults.backup_roles == ("member",) and defaults.backup_access_rules is True
    with pytest.raises(PlanError, match=r"BASISIT_OS_BACKUP_ACCESS_RULES='maybe'"):
        OpenStackSettings.from_env({"BASISIT_OS_BACKUP_ACCESS_RULES": "maybe"})


@pytest.mark.parametrize(
    ("url", "message"),
    [("", r"BASISIT_OS_AUTH_URL is not set"), ("keystone:5000", r"not an http\(s\) URL")],
)
def test_a_kommune_with_object_storage_needs_a_usable_auth_url(url: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        run_program(load_fixture(), dataclasses.replace(SETTINGS, auth_url=url))


# -- the VPN server's endpoint -----------------------------------------------------------------

INSTANCE = "openstack:compute/instance:Instance"
PORT = "openstack:networking/port:Port"
ANYWHERE = "0.0.0.0/0"


def with_vpn(*instances: str) -> dict[str, Any]:
    """The fixture plus a VPN service (catalog vpn, plan S) per instance name."""
    desired = load_fixture()
    for idx, instance in enumerate(instances):
        desired["services"].append(vpn_service(instance, request_id=10 + idx))
    return desired


@pytest.fixture(scope="module")
def tholey_vpn() -> tuple[Recorder, dict[str, Any]]:
    return run_program(with_vpn("vpn"))


def test_only_the_vpn_server_gets_a_floating_ip_bound_to_its_port(tholey_vpn) -> None:
    rec, out = tholey_vpn
    address = {s["name"]: s["address"] for s in out["servers"]}["vpn"]
    (fip,) = rec.of(FLOATING_IP)
    (port,) = rec.of(PORT)
    assert fip.inputs["pool"] == SETTINGS.external_network
    assert (fip.inputs["portId"], fip.inputs["fixedIp"]) == (port.id, address)
    # The port is the VPN server's: its fixed address in the Kommune's subnet, its group.
    assert port.inputs["networkId"] == "id-basisit-10046118-net"
    assert port.inputs["fixedIps"] == [
        {"subnetId": "id-basisit-10046118-subnet", "ipAddress": address}
    ]
    assert port.inputs["securityGroupIds"] == ["id-basisit-10046118-vpn-sg"]
    instances = {i.inputs["name"]: i for i in rec.of(INSTANCE)}
    assert instances["vpn"].inputs["networks"] == [{"port": port.id}]
    # The group sits on the port; on the instance as well, Nova would apply it to no port.
    assert "securityGroups" not in instances["vpn"].inputs
    for name in ("dns", "dateiablage", "sicherung"):
        (nic,) = instances[name].inputs["networks"]
        assert "port" not in nic and nic["uuid"] == "id-basisit-10046118-net", name
    # Both inside the Kommune's project, and bound only once the router reaches the subnet.
    for resource in (fip, port):
        assert resource.provider.split("::")[-2] == "basisit-10046118-scoped"
    assert "ags=10046118" in fip.inputs["tags"] and "catalog_service=vpn" in fip.inputs["tags"]


def test_floating_ip_quota_is_one_per_vpn_server() -> None:
    for vpns in ((), ("vpn",), ("vpn", "vpn-zweit")):
        rec, out = run_program(with_vpn(*vpns))
        quota = rec.one("openstack:networking/quotaV2:QuotaV2").inputs
        fips = rec.of(FLOATING_IP)
        assert quota["floatingip"] == len(fips) == len(vpns), vpns
        # Explicit ports take the slot an implicit one would: the port quota is unchanged.
        assert quota["port"] == len(out["servers"]) + 2, vpns
        ports = {p.id: p.inputs["securityGroupIds"] for p in rec.of(PORT)}
        assert sorted(ports[f.inputs["portId"]][0] for f in fips) == sorted(
            f"id-basisit-10046118-{v}-sg" for v in vpns
        )


def test_from_anywhere_only_wireguard_reaches_the_vpn_server(tholey_vpn) -> None:
    rec, _ = tholey_vpn
    anywhere = [
        (r.inputs["securityGroupId"], r.inputs["protocol"], r.inputs["portRangeMin"])
        for r in rec.of("openstack:networking/secGroupRule:SecGroupRule")
        if r.inputs["direction"] == "ingress" and r.inputs["remoteIpPrefix"] == ANYWHERE
    ]
    assert anywhere == [("id-basisit-10046118-vpn-sg", "udp", 51820)]
    ingress = {
        (r["protocol"], int(r["portRangeMin"]), r["remoteIpPrefix"])
        for r in rules_of(rec, "vpn")
        if r["direction"] == "ingress"
    }
    assert ingress == {
        ("udp", 51820, ANYWHERE),
        ("tcp", 22, SETTINGS.operators_cidr),
        ("tcp", 9100, SETTINGS.operators_cidr),
    }


def test_vpn_endpoint_in_contract_2_and_the_inventory(tholey_vpn) -> None:
    from basisit.configure.inventory import build_inventory

    rec, out = tholey_vpn
    doc = outputs.document(out)
    assert outputs.problems(doc) == []
    (fip,) = rec.of(FLOATING_IP)
    endpoints = {s["name"]: s.get("vpn_endpoint") for s in doc["servers"]}
    assert endpoints == {
        "dns": None,
        "dateiablage": None,
        "sicherung": None,
        "vpn": {"host": rec.floating_addresses[fip.name], "port": 51820},
    }
    hosts = build_inventory(doc, with_vpn("vpn"))["all"]["hosts"]
    assert hosts["vpn"]["basisit_vpn_endpoint"] == f"{rec.floating_addresses[fip.name]}:51820"
    assert [h for h, hv in hosts.items() if "basisit_vpn_endpoint" in hv] == ["vpn"]


def test_floating_ips_come_from_the_configured_external_network() -> None:
    settings = dataclasses.replace(
        SETTINGS,
        external_network=OpenStackSettings.from_env(
            {"BASISIT_OS_EXTERNAL_NETWORK": "ext-saar"}
        ).external_network,
    )
    rec, _ = run_program(with_vpn("vpn"), settings)
    assert rec.one(FLOATING_IP).inputs["pool"] == "ext-saar"
    assert rec.one("openstack:networking/router:Router").inputs["externalNetworkId"] == (
        "extnet-ext-saar"
    )


def test_a_vpn_server_without_its_open_udp_port_is_refused() -> None:
    desired = with_vpn("vpn")
    desired["services"][-1]["ports"] = [{"port": 51820, "protocol": "udp", "source": "kommune"}]
    with pytest.raises(PlanError, match=r"instance 'vpn'.*needs port 51820/udp with source any"):
        run_program(desired)
