"""The tutorial as one script: a shoe shop's first 私域 campaign, start to finish.

A shoe shop sells on a Douyin live stream. It shows a WeCom channel QR code
(渠道活码) in the live room; viewers who scan it become WeCom contacts, get a
welcome message and tags, and move through the lifecycle. The shop then runs
an invite task (任务宝), pilots two SMS texts on a random sample (A/B) and
rolls out the winner, records orders paid with coupons, and reads the funnel
and fission reports.

Everything runs locally: the database is a SQLite file in a temporary
directory, WeCom is played by :class:`siyu.testing.fakes.FakeWeCom` (a local
HTTP server speaking the real wire format), SMS by a
:class:`siyu.testing.RecordingChannel`, and time by a
:class:`siyu.testing.FakeClock`, so a week passes in a millisecond.

Run it with ``python examples/tutorial_shoe_shop.py``. The tutorial page of
the docs (docs/tutorial.md) shows this file section by section; the
``--8<--`` comments mark the sections it includes.
"""

# --8<-- [start:setup]
import random
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import siyu
from siyu.channels import Limits
from siyu.channels.wecom.crypto import signature
from siyu.models.commerce import ProductRole
from siyu.models.referrals import Reward, ValidInvite
from siyu.testing import FakeClock, RecordingChannel
from siyu.testing.fakes import FakeWeCom

# Tuesday 2026-11-24, 20:00 in Shanghai: the live stream starts.
clock = FakeClock(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
rng = random.Random(1123)  # the same seed, the same story every run

folder = Path(tempfile.mkdtemp(prefix="shoe-shop-"))
ws = siyu.connect(
    f"sqlite:///{folder / 'shop.db'}", clock=clock, tz="Asia/Shanghai"
)
print(ws)
# --8<-- [end:setup]

# --8<-- [start:catalogue]
# Every product has a job (its role): socks pull people in, running shoes
# make the margin, insoles are the invite-task prize, the care kit keeps
# the relationship warm. Money is yuan as str / int / Decimal, never float.
catalogue = [
    # sku        name                      price    cost  role
    ("SOCKS-3", "Running socks, 3 pairs", "19.90", "8", ProductRole.TRAFFIC),
    ("RUN-42", "Road runner 42", "499", "210", ProductRole.PROFIT),
    ("TRAIL-7", "Trail shoe 7", "599", "260", ProductRole.ACTIVITY),
    ("INSOLE", "Gel insoles", "59", "18", ProductRole.FISSION),
    ("CARE-KIT", "Shoe care kit", "39", "12", ProductRole.RELATIONSHIP),
]
for sku, name, price, cost, role in catalogue:
    ws.products.add(sku, name, price=price, cost=cost, role=role)

# A coupon every newcomer gets, checked against every product's cost now:
# a coupon that could sell something below cost is refused (MarginViolation).
ws.coupons.create("满299减40", amount="40", threshold="299", valid_days=14)

stages = "新加好友 → 有互动 → 有意向 → 已购 → 复购 → 沉睡"
ws.tags.define_group("lifecycle", exclusive=True, description=stages)
ws.tags.define_group("interest", description="asked about in the live room")
# --8<-- [end:catalogue]

# --8<-- [start:qrcode]
# WeCom: the fake server stands in for qyapi.weixin.qq.com. In production
# drop base_url= and set SIYU_WECOM_CORP_ID, SIYU_WECOM_SECRET, SIYU_WECOM_TOKEN
# and SIYU_WECOM_ENCODING_AES_KEY instead.
api = FakeWeCom(corp_id="ww-shoes", secret="contact-secret", clock=clock).start()
wecom = ws.channels.get(
    "wecom",
    corp_id="ww-shoes",
    secret="contact-secret",
    base_url=api.url,
    token="callback-token",
    encoding_aes_key="kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
)

# The channel QR code shown in the live room. Its `state` tells siyu where a
# new contact came from; its tags and welcome text are applied on arrival.
way = ws.wecom.add_contact_way(
    state="douyin_live_1124",
    user=["xiaolin"],  # the staff member whose WeCom account they add
    tags=["source/抖音直播"],
    welcome="欢迎来到步履跑鞋！回复手机号领取满299减40券",
)
print("QR code for the live room:", way["qr_code"])
# --8<-- [end:qrcode]

# --8<-- [start:callbacks]
# WeCom tells the shop about each new contact through the callback URL, as
# an encrypted POST. Here we play WeCom and build those POSTs ourselves;
# in a web app you pass the real request to the same handler (see the
# how-to "Receive WeCom callbacks in a web app").
handler = ws.wecom.callbacks()
crypto = wecom.crypto()


def wecom_posts_add_contact(external_userid: str, state: str) -> None:
    """Deliver one encrypted add_external_contact event, the way WeCom does."""
    now = int(clock.now.timestamp())
    welcome_code = api.issue_welcome_code()  # good once, within 20 s of the event
    xml = (
        "<xml><ToUserName><![CDATA[ww-shoes]]></ToUserName>"
        f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event>"
        "<ChangeType><![CDATA[add_external_contact]]></ChangeType>"
        "<UserID><![CDATA[xiaolin]]></UserID>"
        f"<ExternalUserID><![CDATA[{external_userid}]]></ExternalUserID>"
        f"<State><![CDATA[{state}]]></State>"
        f"<WelcomeCode><![CDATA[{welcome_code}]]></WelcomeCode></xml>"
    )
    encrypted = crypto.encrypt(xml)
    sig = signature("callback-token", str(now), "nonce", encrypted)
    body = f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode()
    query = f"msg_signature={sig}&timestamp={now}&nonce=nonce"
    response = handler.handle("POST", query, body)
    # Answered at once; the work happens in process_pending().
    assert response.status == 200


# 240 viewers scan the code during the two-hour stream.
for n in range(240):
    wecom_posts_add_contact(f"wmVIEWER{n:04d}", "douyin_live_1124")
    clock.advance(seconds=12)
    handler.process_pending()  # a worker thread does this in a web app

viewers = [ws.users.find(wecom_external_userid=f"wmVIEWER{n:04d}").id for n in range(240)]
first = ws.users.get(viewers[0])
# wecom douyin_live_1124 {'source/抖音直播'}
print(first.source, first.source_state, ws.tags.of(first.id))
print(len(api.welcomes), "welcome messages sent")
# --8<-- [end:callbacks]

# --8<-- [start:receive]
# 承接: most reply with their phone number, which the shop links to the same
# user and records as consent to marketing SMS (PIPL: no consent, no SMS).
# Every newcomer also gets the welcome coupon. `with ws.write():` makes the
# loop one transaction: the calls inside join it, and it commits once.
agreed = {"purpose": "marketing", "notice_version": "2026-11"}  # which notice they read
with ws.write():
    for n, uid in enumerate(viewers):
        if rng.random() < 0.85:
            ws.users.link(uid, "phone", f"1390000{n:04d}")
            ws.users.consent(uid, channel="sms", source="wecom_reply", **agreed)
        ws.users.consent(uid, channel="wecom", source="wecom_add", **agreed)
        if rng.random() < 0.3:
            ws.tags.apply(uid, "interest/trail", by="live_room_question")
ws.coupons.issue("满299减40", viewers, key="welcome-coupons-1124")
# --8<-- [end:receive]

# --8<-- [start:lifecycle]
# 分层: every new contact gets the stage `new`; what they do moves them on.
# Tracked events come from your mall, your WeCom chat archive, your app ...
print(ws.lifecycle.sweep())  # {'new': 240}
with ws.write():
    for uid in viewers:
        if rng.random() < 0.6:
            ws.events.track(uid, "message_received")
        if rng.random() < 0.3:
            ws.events.track(uid, "page_view", properties={"url": "/p/RUN-42"})
            if rng.random() < 0.5:
                ws.events.track(uid, "added_to_cart", properties={"sku": "RUN-42"})
print(ws.lifecycle.counts())  # how many users sit in each stage
# --8<-- [end:lifecycle]

# --8<-- [start:invite]
# 裂变: a 任务宝 invite task. Invite 3 friends who add our WeCom and stay for
# 3 days: 100 points; invite 5: a pair of gel insoles (a fission-role product).
ws.referrals.campaign(
    "live_1124_invite", starts_at=clock.now, ends_at=clock.now + timedelta(days=7)
)
task = ws.referrals.tasks.create(
    "invite-friends",
    campaign="live_1124_invite",
    deadline=clock.now + timedelta(days=7),
    stages=[(3, Reward.of_points(100)), (5, Reward.of_product("INSOLE"))],
    valid=ValidInvite(stay_days=3, identity="wecom_external_userid"),
)

# 20 fans share their poster. Each poster is a code; friends who scan it add
# WeCom (through a second channel QR code) and are bound to the fan.
fans = rng.sample(viewers, 20)
friend_number = 0
for fan in fans:
    code = ws.referrals.invite_code(
        fan, campaign="live_1124_invite", channel_state="poster"
    )
    ws.referrals.record_share(
        fan, campaign="live_1124_invite", channel_state="poster", count=8
    )
    for _ in range(rng.choice([0, 1, 2, 3, 5, 6])):
        friend_id = f"wmFRIEND{friend_number:04d}"
        friend_number += 1
        ws.referrals.record_scan(code)
        wecom_posts_add_contact(friend_id, "invite_poster")
        handler.process_pending()
        ws.referrals.bind(ws.users.find(wecom_external_userid=friend_id).id, code)

# Three days later the stay window has passed: evaluate() pays each stage once.
clock.advance(days=3)
granted = ws.referrals.tasks.evaluate()
top3 = ws.referrals.tasks.leaderboard("invite-friends", top=3)
print(len(granted), "rewards granted;", top3)
# --8<-- [end:invite]

# --8<-- [start:sms]
# 激活: an SMS A/B pilot. A RecordingChannel stands in for the SMS provider
# (in production: ws.channels.get("sms_aliyun") with your access key).
sms = RecordingChannel(
    name="sms_aliyun", consent_channel="sms", limits=Limits(max_text_length=70)
)
ws.channels.install(sms)
ws.segments.save("live_viewers", "tag:source/抖音直播")
# A frozen snapshot: the audience won't change under us.
audience = ws.segments.snapshot("live_viewers")

# Saturday 10:00 in Shanghai, outside quiet hours.
clock.set(datetime(2026, 11, 28, 2, 0, tzinfo=UTC))
sms_campaign = ws.campaigns.create(
    "weekend_run",
    audience=audience,
    channel="sms_aliyun",
    template="【步履跑鞋】${copy} 回复TD退订",
    variants={
        "A": {"copy": "周末跑鞋满299减40，券已到账"},
        "B": {"copy": "直播同款跑鞋今晚8点返场，限量200双"},
    },
    goal="order",
    attribution_window=timedelta(days=3),
)
# Reach after every gate: consent, suppression, budget, quiet hours ...
preview = ws.campaigns.preview(sms_campaign.id)
print(preview)
pilot = ws.campaigns.pilot(sms_campaign.id, fraction=0.8, seed=2026)
print(pilot.sent, "pilot messages sent")
# --8<-- [end:sms]

# --8<-- [start:orders]
# 转化: orders come in. The mall quotes the best legal combination of the
# user's coupons and live activities; recording the order with those coupon
# codes redeems them (and the order is attributed to the SMS variant).
clock.advance(hours=5)
assignments = {
    d.user_id: d.variant
    for d in ws.campaigns.deliveries(sms_campaign.id, limit=10_000)
}
buy_rate = {"A": 0.45, "B": 0.08, "holdout": 0.06}
cart = [{"sku": "RUN-42", "qty": 1}, {"sku": "SOCKS-3", "qty": 1}]
for uid, variant in sorted(assignments.items()):
    if rng.random() < buy_rate[variant]:
        quote = ws.promotions.quote(uid, cart)
        ws.orders.record(
            uid, cart, coupon=list(quote.coupon_codes), key=f"mall-{uid}-1"
        )
print(quote.explain())  # the last quote, line by line

# A few come back for a second pair a day later (复购).
clock.advance(days=1)
for uid in ws.segments.users("tag:lifecycle/customer")[:12]:
    ws.orders.record(uid, [{"sku": "TRAIL-7", "qty": 1}], key=f"mall-{uid}-2")

# Friends who came through the posters try the 19.90 socks (引流品).
for friend in ws.referrals.invitees(fans[0]) + ws.referrals.invitees(fans[1]):
    ws.orders.record(
        friend, [{"sku": "SOCKS-3", "qty": 1}], key=f"mall-{friend}-socks"
    )
print(ws.lifecycle.counts())
# --8<-- [end:orders]

# --8<-- [start:decide]
# Back to the pilot: which text sold more shoes? A stated test decides, then
# the winner goes to the rest of the audience (the holdout stays untouched).
print(ws.campaigns.results(sms_campaign.id))
decision = ws.campaigns.decide(sms_campaign.id, min_sample=40)
print(decision.reason)
if decision.winner:
    rollout = ws.campaigns.rollout(sms_campaign.id)
    print(rollout.sent, "sent in the roll-out")
print(len(sms.sent), "SMS recorded in total")
# --8<-- [end:decide]

# --8<-- [start:reports]
# Monday morning: read the shop. The funnel from first contact to referral,
# per channel QR state, and how far the invite task spread.
clock.set(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
funnel = ws.analytics.funnel(
    ["first_seen", "added_wecom", "first_order", "second_order"], by="state"
)
print(funnel)
fission = ws.analytics.fission("live_1124_invite")
print(fission)
# --8<-- [end:reports]

# --8<-- [start:close]
ws.close()
api.stop()
# The shop is an ordinary SQLite file: explore it with the command line, e.g.
#   siyu --db sqlite:///<folder>/shop.db report rfm
# then delete it.
shutil.rmtree(folder)
# --8<-- [end:close]
