"""Environment validation: the merge rule, environments extending shipped ones or files beside
them, and environment files as strict as profiles, problems named in the file that wrote them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from citykit import compiler
from citykit.errors import Problem
from citykit.errors import ValidationFailed
from citykit.input.environment import MAX_EXTENDS
from citykit.input.environment import SHIPPED
from citykit.input.environment import deep_merge
from citykit.input.environment import load as load_environment
from citykit.input.problems import Source
from citykit.input.problems import attribute
from tests.conftest import EXAMPLE
from tests.conftest import example_data


def test_deep_merge_rule() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1, "e": {"f": 1}}
    overlay = {"a": {"c": [3], "g": 2}, "d": None, "e": 5}
    assert deep_merge(base, overlay) == {"a": {"b": 1, "c": [3], "g": 2}, "e": 5}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1, "e": {"f": 1}}


def test_custom_environment_extends_a_shipped_one(tmp_path) -> None:
    custom = tmp_path / "lab.yaml"
    custom.write_text(
        "apiVersion: citykit.io/v1alpha1\nkind: Environment\nname: lab\nextends: staging\n"
        "replicaFactor: 2\ncluster: {nodes: {gpu: 0}}\n"
        "profile: {layers: {sensing: {device-broker: {replicas: 7}}}}\n",
        encoding="utf-8",
    )
    environment, _ = load_environment(str(custom))
    assert environment.replica_factor == 2
    assert environment.size_factor == 0.5  # from staging
    assert environment.cluster.nodes.gpu == 0 and environment.cluster.nodes.general == 3
    plan = compiler.plan(EXAMPLE, str(custom))
    assert plan.by_name("emqx").size("replicas") == 7


def test_unknown_environment_name_is_an_input_error() -> None:
    with pytest.raises(ValidationFailed) as caught:
        load_environment("qa")
    assert "unknown environment 'qa'" in caught.value.lines()[0]


# -- environment files: as strict as profiles, problems named where they are written ----------


def write_env(directory: Path, data: dict[str, Any], name: str = "my-env.yaml") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def custom(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "citykit.io/v1alpha1", "kind": "Environment", "name": "lab"} | fields


def env_problems(path: Path) -> list[Problem]:
    with pytest.raises(ValidationFailed) as caught:
        compiler.plan(EXAMPLE, str(path))
    return caught.value.problems


def test_every_shipped_environment_is_valid() -> None:
    for env in SHIPPED:
        assert compiler.plan(EXAMPLE, env).environment.name == env


@pytest.mark.parametrize(
    ("fields", "path", "fragment"),
    [
        ({"name": "Lab"}, "name", "not allowed here"),
        ({"storageClass": "Fast_SSD"}, "storageClass", "not a Kubernetes object name"),
        ({"storageClass": "a" * 254}, "storageClass", "254 characters"),
        ({"domain": "-bad.example"}, "domain", "not a DNS domain"),
        ({"domain": "a..example"}, "domain", "empty label"),
        ({"domain": "x" * 64 + ".example"}, "domain", "64 characters"),
        ({"domain": ("a" * 60 + ".") * 5 + "ex"}, "domain", "at most 249"),
        ({"domain": "10.0.0.1"}, "domain", "IP address"),
        ({"registryMirror": "mirror"}, "registryMirror", "no registry host"),
        ({"registryMirror": "reg.example/UP"}, "registryMirror", "path component"),
        (
            {"tls": {"issuer": "acme", "acmeServer": "http://acme.example/d", "email": "a@b.cd"}},
            "tls.acmeServer",
            "scheme http://",
        ),
        (
            {"tls": {"issuer": "acme", "acmeServer": "https://acme.example/d", "email": "ops"}},
            "tls.email",
            "not an e-mail address",
        ),
        ({"tls": {"issuer": "acme"}}, "tls", "needs acmeServer"),
        ({"engine": {"backendUrl": "ftp://state.example"}}, "engine.backendUrl", "scheme ftp://"),
        ({"engine": {"backendUrl": "file://state"}}, "engine.backendUrl", "absolute path"),
        ({"engine": {"secretsProvider": "vault://k"}}, "engine.secretsProvider", "vault://"),
        ({"cluster": {"context": "-x"}}, "cluster.context", "kubeconfig context"),
        ({"cluster": {"name": "a" * 33}}, "cluster.name", "not allowed here"),
        ({"cluster": {"nodes": {"general": 10_000}}}, "cluster.nodes.general", "less than"),
        ({"cluster": {"nodes": {"edgePerDistrict": -1}}}, "cluster.nodes.edgePerDistrict", ""),
        ({"replicaFactor": 1e9}, "replicaFactor", "less than or equal to 10"),
        ({"sizeFactor": 0}, "sizeFactor", "greater than 0"),
        ({"sizeFactor": float("nan")}, "sizeFactor", ""),
        ({"domian": "x.example"}, "domian", "did you mean 'domain'"),
    ],
)
def test_environment_values_are_checked_where_they_are_written(
    tmp_path: Path, fields: dict[str, Any], path: str, fragment: str
) -> None:
    env = write_env(tmp_path, custom(**fields))
    found = env_problems(env)
    assert [(p.file, p.path) for p in found] == [(str(env), path)], found
    assert fragment in found[0].render()


def test_environment_values_kubernetes_and_pulumi_accept_pass(tmp_path: Path) -> None:
    env = write_env(
        tmp_path,
        custom(
            extends="prod",
            storageClass="fast.ssd-1",
            domain="yuhang.city.example",
            registryMirror="[::1]:5000/mirror/city",
            tls={"email": "o'brien+ops@city.example"},
            engine={
                "backendUrl": "s3://city-state/citykit?region=cn-north-1",
                "secretsProvider": "awskms://alias/citykit?region=cn-north-1",
            },
            cluster={"context": "arn:aws:eks:cn-north-1:1:cluster/city"},
        ),
    )
    plan = compiler.plan(EXAMPLE, str(env))
    assert plan.environment.registry_mirror == "[::1]:5000/mirror/city"
    assert plan.by_name("emqx").images["broker"].startswith("[::1]:5000/mirror/city/")


def test_an_overlay_problem_names_the_environment_file(tmp_path: Path) -> None:
    env = write_env(
        tmp_path,
        custom(profile={"layers": {"sensing": {"device-broker": {"replicas": 0}}}, "bogus": 1}),
    )
    rendered = [p.render() for p in env_problems(env)]
    assert len(rendered) == 2
    assert any(
        r.startswith(f"{env}: profile.layers.sensing.device-broker.replicas: ") for r in rendered
    )
    assert any(r.startswith(f"{env}: profile.bogus: unknown key 'bogus'") for r in rendered)


def test_an_overlay_value_over_the_profiles_names_both_files(tmp_path: Path) -> None:
    env = write_env(tmp_path, custom(profile={"city": {"slug": "Yu Hang"}}))
    (problem,) = env_problems(env)
    assert (problem.file, problem.path) == (str(env), "profile.city.slug")
    assert f"overrides city.slug in {EXAMPLE}" in problem.hint


def test_a_missing_profile_key_stays_with_the_profile(write_profile, tmp_path: Path) -> None:
    data = example_data()
    del data["scale"]
    env = write_env(tmp_path, custom(profile={"city": {"name": "余杭"}}))
    (problem,) = env_problems_for(write_profile(data), env)
    assert (problem.file, problem.path) == (str(tmp_path / "profile.yaml"), "scale")


def env_problems_for(profile: Path, env: Path) -> list[Problem]:
    with pytest.raises(ValidationFailed) as caught:
        compiler.plan(profile, str(env))
    return caught.value.problems


def test_extends_a_file_beside_it_and_problems_name_the_file_that_wrote_them(
    tmp_path: Path,
) -> None:
    base = write_env(
        tmp_path / "sites",
        custom(
            name="base",
            extends="staging",
            domain="bad_domain.example",
            profile={"layers": {"data": {"lake": {"replicas": 3}}}},
        ),
        "base.yaml",
    )
    env = write_env(tmp_path, custom(extends="sites/base.yaml", cluster={"realNode": True}))
    found = {(p.file, p.path): p for p in env_problems(env)}
    assert set(found) == {(str(env), "cluster"), (str(tmp_path / "sites/base.yaml"), "domain")}
    assert "staging.yaml" in found[(str(env), "cluster")].hint  # merged with staging's cluster

    base.write_text(base.read_text().replace("bad_domain", "good"), encoding="utf-8")
    (problem,) = env_problems(write_env(tmp_path, custom(extends="sites/base.yaml")))
    assert problem.file == str(tmp_path / "sites/base.yaml")
    assert problem.path == "profile.layers.data.lake" and "data-lake" in problem.hint


def test_extends_chain_merges_in_order(tmp_path: Path) -> None:
    write_env(tmp_path, custom(name="base", extends="local", replicaFactor=0.5), "base.yaml")
    env = write_env(tmp_path, custom(extends="./base.yaml", sizeFactor=0.75))
    plan = compiler.plan(EXAMPLE, str(env))
    environment = plan.environment
    assert (environment.name, environment.replica_factor, environment.size_factor) == (
        "lab",
        0.5,
        0.75,
    )
    assert environment.cluster.real_node  # from local, through base
    assert plan.by_capability("device-broker").name == "mosquitto"  # local's overlay


def test_a_null_overlay_drops_the_overlays_it_extends(tmp_path: Path) -> None:
    env = write_env(tmp_path, custom(extends="local", profile=None))
    assert compiler.plan(EXAMPLE, str(env)).by_capability("device-broker").name == "emqx"


@pytest.mark.parametrize(
    ("extends", "fragment"),
    [
        ("qa", "unknown environment 'qa'"),
        ("../outside.yaml", "leaves the directory"),
        ("sub/../../outside.yaml", "leaves the directory"),
        ("/etc/passwd", "not a path relative to this file"),
        ("~/env.yaml", "not a path relative to this file"),
        ("missing.yaml", "no such file"),
        (["dev"], "expected an environment name or file, got a list"),
        (7, "expected an environment name or file, got 7"),
        ("x" * 5000 + ".yaml", ""),
    ],
)
def test_extends_names_a_shipped_environment_or_a_file_beside_it(
    tmp_path: Path, extends: Any, fragment: str
) -> None:
    (tmp_path / "outside.yaml").write_text("apiVersion: citykit.io/v1alpha1\n", encoding="utf-8")
    directory = tmp_path / "envs"
    directory.mkdir()
    env = write_env(directory, custom(extends=extends))
    (problem,) = env_problems(env)
    assert (problem.file, problem.path) == (str(env), "extends")
    assert fragment in problem.message
    assert len(problem.render()) < 500


def test_extends_through_a_link_that_leaves_the_directory_is_refused(tmp_path: Path) -> None:
    write_env(tmp_path, custom(name="outside"), "outside.yaml")
    directory = tmp_path / "envs"
    directory.mkdir()
    (directory / "base.yaml").symlink_to(tmp_path / "outside.yaml")
    env = write_env(directory, custom(extends="base.yaml"))
    (problem,) = env_problems(env)
    assert "leaves the directory" in problem.message


def test_extends_cycles_are_named(tmp_path: Path) -> None:
    write_env(tmp_path, custom(name="a", extends="b.yaml"), "a.yaml")
    write_env(tmp_path, custom(name="b", extends="a.yaml"), "b.yaml")
    (problem,) = env_problems(tmp_path / "a.yaml")
    assert (problem.file, problem.path) == (str(tmp_path / "b.yaml"), "extends")
    assert "cycle: a.yaml -> b.yaml -> a.yaml" in problem.message
    own = write_env(tmp_path, custom(extends="my-env.yaml"))
    (problem,) = env_problems(own)
    assert "cycle: my-env.yaml -> my-env.yaml" in problem.message


def test_extends_chains_are_bounded(tmp_path: Path) -> None:
    for index in range(MAX_EXTENDS + 2):
        parent = {"extends": f"e{index + 1}.yaml"} if index <= MAX_EXTENDS else {}
        write_env(tmp_path, custom(name=f"e{index}", **parent), f"e{index}.yaml")
    (problem,) = env_problems(tmp_path / "e0.yaml")
    assert problem.path == "extends" and f"more than {MAX_EXTENDS}" in problem.message


def test_graph_problems_name_the_file_that_wrote_the_setting() -> None:
    sources = [
        Source("city.yaml", {"layers": {"data": {}}}),
        Source("env.yaml", {"layers": {"data": {"lake": {"enabled": True}}}}, ("profile",)),
    ]
    moved = attribute(
        [Problem("layers.data.lake", "x requires y", file="city.yaml"), Problem("", "z", "other")],
        sources,
        "city.yaml",
    )
    assert [(p.file, p.path) for p in moved] == [
        ("env.yaml", "profile.layers.data.lake"),
        ("other", ""),
    ]
