"""``compute-actions fleet ...``: the client of the fleet control extension (api/views/fleet_control.py).

  fleet hosts                          the simulated hosts, up or down, with their usage
  fleet operations                     what a fault rule may name, and which effects apply
  fleet faults list                    the rules, with how many times each may still fire
  fleet faults add OP [--host H] [--effect fail|hang|slow] [--factor F] [--times N] [--message M]
  fleet faults clear [RULE_ID]         every rule, or one
  fleet host down|up NAME              the host's compute service goes down / comes back
  fleet time-scale [SCALE|config]      show, set, or reset the multiplier of simulated durations

Every change takes effect at the next step of every action, in every worker.
"""
from __future__ import annotations

import argparse
import urllib.parse
from typing import Any

from workers.api_client import (
    add_client_options,
    client_from,
    fail,
    print_json_if_asked,
    print_table,
    use_rich,
)


def add_fleet_command(sub: Any) -> None:
    fleet = sub.add_parser("fleet", help="drive the simulated fleet: faults, hosts up/down, time scale (admin)",
                           description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_client_options(fleet)
    commands = fleet.add_subparsers(dest="fleet_command", required=True, metavar="COMMAND")

    def leaf(parent: Any, name: str, func: Any, help_text: str) -> argparse.ArgumentParser:
        parser = parent.add_parser(name, help=help_text)
        add_client_options(parser)
        parser.set_defaults(client_command=func)
        return parser

    with_json = [leaf(commands, "hosts", hosts, "list the hosts"),
                 leaf(commands, "operations", operations, "list the operations a fault rule may name")]
    faults = commands.add_parser("faults", help="fault rules: list, add, clear")
    add_client_options(faults)
    fault_commands = faults.add_subparsers(dest="faults_command", required=True, metavar="COMMAND")
    with_json.append(leaf(fault_commands, "list", list_faults, "list the fault rules"))
    add = leaf(fault_commands, "add", add_fault, "add (or replace) a fault rule")
    add.add_argument("operation", help="an operation or check (see 'fleet operations')")
    add.add_argument("--host", help="only on this host (default: on every host)")
    add.add_argument("--effect", choices=("fail", "hang", "slow"), default="fail")
    add.add_argument("--factor", type=float, help="slow: how many times longer (default 10)")
    add.add_argument("--times", type=int, help="fire this many times, then stop (default: every time)")
    add.add_argument("--message", help="fail: the error the operation or check reports")
    with_json.append(add)
    clear = leaf(fault_commands, "clear", clear_faults, "remove every rule, or the one named")
    clear.add_argument("rule_id", nargs="?", help="a rule id from 'fleet faults list'")
    host = commands.add_parser("host", help="take a host down or bring it up")
    add_client_options(host)
    host_commands = host.add_subparsers(dest="host_command", required=True, metavar="COMMAND")
    for name, up in (("down", False), ("up", True)):
        one = leaf(host_commands, name, host_up if up else host_down, f"the host's compute service goes {name}")
        one.add_argument("name")
        with_json.append(one)
    scale = leaf(commands, "time-scale", time_scale, "show or set the multiplier of simulated durations")
    scale.add_argument("scale", nargs="?",
                       help="0 = instant, 1 = the fleet file's durations, 10 = ten times slower; "
                            "'config' = back to each process's [fleet] duration_scale")
    with_json.append(scale)
    for parser in with_json:
        parser.add_argument("--json", action="store_true", help="print the API's JSON answer")


# ---- the commands -------------------------------------------------------------------------------
def fleet_get(args: argparse.Namespace, path: str) -> Any:
    """The extension's answer at ``path`` (``/hosts``), unwrapped from its key (``hosts``)."""
    client = client_from(args)
    return client.get(client.fleet_url(path))[path.strip("/")]


def hosts(args: argparse.Namespace) -> int:
    found = fleet_get(args, "/hosts")
    if print_json_if_asked(args, found):
        return 0
    print_table("Fleet hosts", ["Host", "State", "Status", "Type", "Zone", "VMs", "vCPUs used", "RAM used (MiB)"],
                [[h["name"], h["state"], h["status"], h["hypervisor_type"], h["availability_zone"], h["running_vms"],
                  f"{h['vcpus_used']}/{h['vcpus']}", f"{h['memory_mb_used']}/{h['memory_mb']}"] for h in found],
                rich_output=use_rich(args))
    return 0


def operations(args: argparse.Namespace) -> int:
    found = fleet_get(args, "/operations")
    if print_json_if_asked(args, found):
        return 0
    print_table("Operations a fault rule may name", ["Operation", "Kind", "Effects"],
                [[o["name"], o["kind"], ", ".join(o["effects"])] for o in found], rich_output=use_rich(args))
    return 0


def fault_rows(found: list[dict[str, Any]]) -> list[list[Any]]:
    def what(rule: dict[str, Any]) -> str:
        if rule["effect"] == "slow":
            return f"slow x{rule['factor']:g}"
        if rule["effect"] == "fail":
            return f"fail: {rule['message']}"
        return rule["effect"]

    return [[r["id"], r["operation"], r["host"] or "(every host)", what(r),
             "always" if r["times_left"] is None else r["times_left"]] for r in found]


def list_faults(args: argparse.Namespace) -> int:
    found = fleet_get(args, "/faults")
    if print_json_if_asked(args, found):
        return 0
    if not found:
        print("no fault rules", flush=True)
        return 0
    print_table("Fault rules", ["ID", "Operation", "Host", "Effect", "Times left"], fault_rows(found),
                rich_output=use_rich(args))
    return 0


def add_fault(args: argparse.Namespace) -> int:
    client = client_from(args)
    body = {"operation": args.operation, "host": args.host, "effect": args.effect, "times": args.times,
            "message": args.message}
    if args.factor is not None:
        body["factor"] = args.factor
    rule = client.request("POST", client.fleet_url("/faults"), body)[1]["fault"]
    if print_json_if_asked(args, rule):
        return 0
    print(f"added fault rule {rule['id']}: {fault_rows([rule])[0][3]} on "
          f"{rule['host'] or 'every host'}, {'always' if rule['times_left'] is None else str(rule['times_left']) + ' time(s)'}",
          flush=True)
    return 0


def clear_faults(args: argparse.Namespace) -> int:
    client = client_from(args)
    if args.rule_id:
        client.request("DELETE", client.fleet_url("/faults/" + urllib.parse.quote(args.rule_id, safe=":*")))
        print(f"removed fault rule {args.rule_id}", flush=True)
    else:
        client.request("DELETE", client.fleet_url("/faults"))
        print("removed every fault rule", flush=True)
    return 0


def set_host(args: argparse.Namespace, up: bool) -> int:
    client = client_from(args)
    host = client.request("PATCH", client.fleet_url("/hosts/" + urllib.parse.quote(args.name, safe="")),
                          {"up": up})[1]["host"]
    if print_json_if_asked(args, host):
        return 0
    # The simulated nova-compute stops (or starts) at once; os-services calls it down only once its
    # last report is [DEFAULT] service_down_time old, as Nova's servicegroup does.
    print(f"{host['name']} is {'up' if host['up'] else 'down'} (os-services state {host['state']}, "
          f"service {host['status']})", flush=True)
    return 0


def host_down(args: argparse.Namespace) -> int:
    return set_host(args, False)


def host_up(args: argparse.Namespace) -> int:
    return set_host(args, True)


def time_scale(args: argparse.Namespace) -> int:
    if args.scale is None:
        shown = fleet_get(args, "/time")
    else:
        if args.scale in ("config", "default"):
            scale: float | None = None
        else:
            try:
                scale = float(args.scale)
            except ValueError:
                return fail(f"time-scale takes a number or 'config', not {args.scale!r}", 2)
        client = client_from(args)
        shown = client.request("PUT", client.fleet_url("/time"), {"scale": scale})[1]["time"]
    if print_json_if_asked(args, shown):
        return 0
    origin = "set at runtime" if shown["source"] == "runtime" else "from [fleet] duration_scale"
    print(f"time scale {shown['scale']:g} ({origin}; configured {shown['configured_scale']:g})", flush=True)
    return 0
