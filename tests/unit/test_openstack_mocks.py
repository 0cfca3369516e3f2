"""The openstack target under Pulumi mocks: the resources a Kommune tenant gets, and how.

The OpenStack API is not reachable here; pulumi.runtime.set_mocks records every resource the
program registers with its inputs, and the tests check isolation, quotas, ranges and tags.
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from basisit import addressing
from basisit.provision import outputs
from stacks.model import PlanError, build_plan
from stacks.targets.openstack import OpenStackSettings, OpenStackTarget
from stacks.tenant import KommuneTenant

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "desired-state-10046118.yaml"
SETTINGS = OpenStackSettings(
    operators_group="ego-saar-ops",
    operator_roles=("member", "load-balancer_member"),
    image="Debian 12 (SCS)",
    operators_cidr="172.31.250.0/24",
)
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

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        rid = f"id-{args.name}"
        self.resources.append(
            Registered(args.typ, args.name, dict(args.inputs), args.provider or "", rid)
        )
        return rid, dict(args.inputs)

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
