import sys, json
sys.path.insert(0, "/work/main/tests/cli")
from fake_greengrassv2 import v2_account  # noqa
from deeplens_cli.plan import Executor
from deeplens_cli.output import Reporter
from deeplens_cli.targets.greengrass_v2 import GreengrassV2Target
from deeplens_cli.targets import Device

def test_flow(v2_account, settings_for, tmp_path):
    aws = v2_account; gg = v2_account.gg
    s = settings_for(deploy__poll_s=1.0)
    ctx = aws.context(s)
    t = GreengrassV2Target(ctx, s)
    plan = t.plan_register_device("Cam", str(tmp_path/"b"))
    for a in plan.actions: print(a.verb, a.resource, a.reason)
    r = Executor(ctx, Reporter()).execute(plan)
    print(sorted((tmp_path/"b").iterdir()))
    dev = t.list_devices()[0]
    print(dev)
    gg.connect_core(dev.thing_name, bundle=tmp_path/"b")
    plan = t.plan_deploy(dev)
    for a in plan.actions: print(a.verb, a.resource, a.reason)
    r = Executor(ctx, Reporter()).execute(plan)
    out = t.wait_for_deployment(dev, r, 60, Reporter())
    print(out)
    print(json.dumps(t.device_status(dev), indent=1, default=str))
    print(json.dumps(t.project_status(), indent=1, default=str))
    plan = t.plan_deploy(dev)
    for a in plan.actions: print(a.verb, a.resource, a.reason)
    plan = t.plan_destroy(dev)
    for a in plan.actions: print(a.verb, a.resource, a.reason)
    Executor(ctx, Reporter()).execute(plan)
    plan = t.plan_destroy(None)
    for a in plan.actions: print(a.verb, a.resource, a.reason)
    Executor(ctx, Reporter()).execute(plan)
    print(gg.calls)
    assert 0
