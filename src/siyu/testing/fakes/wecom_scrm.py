"""The fake WeCom server's staff side: members, per-member relations, transfers.

:class:`FakeWeComScrm` extends :class:`~siyu.testing.fakes.FakeWeCom` with what
WeCom documents for 跟进成员 and 客户继承 (wecom-scrm reference §1-2), and
refuses what WeCom refuses:

* ``get_follow_user_list`` is a GET taking only ``access_token``;
* ``externalcontact/get`` returns at most 500 followers per page, with
  ``next_cursor`` only beyond that; each follower is its own relation
  (``remark``, ``tags``, ``add_way``, ``state``, ``oper_userid``, ``createtime``);
* ``batch/get_by_user`` clamps ``limit`` to 100 and answers one item per
  (member, customer) pair;
* transfers answer per customer (top-level ``errcode`` 0): 40096 unknown
  customer, 40097 handover not resigned (resigned transfers), 40128 a third
  in-service transfer within 90 days, 40129 already being transferred, 40130
  same member, 40131 not followed by the handover member. A started transfer
  completes 24 hours later by ``clock`` (``transfer_result`` status 1), unless
  :meth:`refuse` or :meth:`cap` scripted status 3 or 4;
* ``get_unassigned_list`` refuses ``page_size`` over 1000 and pages by ``cursor``.
"""

from __future__ import annotations

from typing import Any

from ._server import Clock, Request, unix_time
from .wecom import FakeWeCom

__all__ = ["FakeWeComScrm"]

DAY = 86_400


class FakeWeComScrm(FakeWeCom):
    """:class:`FakeWeCom` with staff members, relations and transfers.

    ``members`` maps userid to ``{"name", "department", "resigned_at"}``;
    ``relations`` maps ``(member, external_userid)`` to the follow_user fields.
    ``transfers`` lists every started transfer. Page sizes are WeCom's unless a
    test lowers ``follow_page`` / ``result_page``."""

    def __init__(self, corp_id: str = "wwcorp", secret: str = "s3cret", *, clock: Clock | None = None) -> None:
        super().__init__(corp_id, secret, clock=clock)
        self.members: dict[str, dict[str, Any]] = {}
        self.relations: dict[tuple[str, str], dict[str, Any]] = {}
        self.transfers: list[dict[str, Any]] = []
        self.follow_page = 500
        self.result_page = 1000
        self._outcomes: dict[str, int] = {}

    # -- scripting ----------------------------------------------------------------------------
    def add_member(self, userid: str, *, name: str | None = None, department: int = 1) -> None:
        self.members[userid] = {"name": name or userid, "department": [department], "resigned_at": None}

    def resign_member(self, userid: str) -> None:
        self.members[userid]["resigned_at"] = int(unix_time(self.clock))

    def relate(self, member: str, external_userid: str, *, remark: str = "", add_way: int = 1, state: str = "",
               tags: tuple[str, ...] = (), oper_userid: str | None = None, name: str = "客户") -> None:
        """``member`` follows the customer (creating both if new)."""
        if member not in self.members:
            self.add_member(member)
        if external_userid not in self.contacts:
            self.contacts[external_userid] = {"external_userid": external_userid, "name": name, "type": 1}
        self.relations[(member, external_userid)] = {
            "userid": member, "remark": remark, "description": "", "createtime": int(unix_time(self.clock)),
            "tags": [{"group_name": "g", "tag_name": t, "tag_id": f"et{t}", "type": 1} for t in tags],
            "remark_corp_name": "", "remark_mobiles": [], "oper_userid": oper_userid or member,
            "add_way": add_way, "state": state,
        }
        if external_userid not in self.follow[member]:
            self.follow[member].append(external_userid)

    def unrelate(self, member: str, external_userid: str) -> None:
        self.relations.pop((member, external_userid), None)
        if external_userid in self.follow.get(member, []):
            self.follow[member].remove(external_userid)

    def refuse(self, external_userid: str) -> None:
        """The customer refuses their pending transfer (status 3)."""
        self._outcomes[external_userid] = 3

    def cap(self, external_userid: str) -> None:
        """The takeover member's customer cap stops the pending transfer (status 4)."""
        self._outcomes[external_userid] = 4

    def transfer_history(self, external_userid: str, handover: str, takeover: str, *, days_ago: int) -> None:
        """A transfer made elsewhere (the admin console) ``days_ago`` days ago, already done."""
        self.transfers.append({"ext": external_userid, "handover": handover, "takeover": takeover, "kind": "onjob",
                               "start": int(unix_time(self.clock)) - days_ago * DAY, "status": 1})

    # -- staff and relations --------------------------------------------------------------------
    def _get_follow_user_list(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method != "GET" or set(request.query) != {"access_token"} or request.body:
            return {"errcode": 40058, "errmsg": "get_follow_user_list is a GET with access_token only"}
        return {"follow_user": sorted({m for m, _ in self.relations} | set(self.members))}

    def _user_get(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        member = self.members.get(request.query.get("userid", ""))
        if member is None:
            return {"errcode": 60111, "errmsg": "userid not found"}
        return {"userid": request.query["userid"], "name": member["name"], "department": member["department"],
                "status": 1}

    def _get(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self._settle()
        ext = request.query.get("external_userid", "")
        if ext not in self.contacts:
            return {"errcode": 40096, "errmsg": "invalid external userid"}
        follow = [dict(r) for (m, e), r in sorted(self.relations.items()) if e == ext]
        if not follow:
            return {"errcode": 84061, "errmsg": "not external contact"}
        start = int(request.query.get("cursor") or 0)
        nxt = start + self.follow_page
        answer: dict[str, Any] = {"external_contact": self.contacts[ext], "follow_user": follow[start:nxt]}
        if nxt < len(follow):
            answer["next_cursor"] = str(nxt)
        return answer

    def _batch_get_by_user(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self._settle()
        userids = body.get("userid_list")
        if not isinstance(userids, list) or not 1 <= len(userids) <= 100:
            return {"errcode": 40058, "errmsg": "userid_list: 1-100 userids"}
        limit = min(int(body.get("limit") or 50), 100)  # "超过最大值时取最大值"
        items = [(m, e) for m in userids for (mm, e) in sorted(self.relations) if mm == m]
        start = int(body.get("cursor") or 0)
        nxt = start + limit
        page = []
        for m, e in items[start:nxt]:
            rel = self.relations[(m, e)]
            page.append({"external_contact": self.contacts[e],
                         "follow_info": {**{k: v for k, v in rel.items() if k != "tags"},
                                         "tag_id": [t["tag_id"] for t in rel["tags"]]}})
        return {"external_contact_list": page, "next_cursor": str(nxt) if nxt < len(items) else ""}

    # -- transfers ------------------------------------------------------------------------------------
    def _transfer(self, body: dict[str, Any], kind: str) -> dict[str, Any]:
        self._settle()
        handover, takeover = body.get("handover_userid", ""), body.get("takeover_userid", "")
        ids = body.get("external_userid")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            return {"errcode": 40058, "errmsg": "external_userid: 1-100 ids"}
        if len(str(body.get("transfer_success_msg") or "")) > 200:
            return {"errcode": 40058, "errmsg": "transfer_success_msg: at most 200 characters"}
        now = int(unix_time(self.clock))
        results = []
        for ext in ids:
            results.append({"external_userid": ext, "errcode": self._transfer_one(ext, handover, takeover, kind, now)})
        return {"customer": results}

    def _transfer_one(self, ext: str, handover: str, takeover: str, kind: str, now: int) -> int:
        if ext not in self.contacts:
            return 40096
        if handover == takeover:
            return 40130
        if kind == "resigned" and not (self.members.get(handover) or {}).get("resigned_at"):
            return 40097
        if (handover, ext) not in self.relations:
            return 40131
        if any(t["ext"] == ext and t["status"] == 2 for t in self.transfers):
            return 40129
        recent = [t for t in self.transfers if t["ext"] == ext and t["kind"] == "onjob" and now - t["start"] < 90 * DAY]
        if kind == "onjob" and len(recent) >= 2:
            return 40128
        self.transfers.append({"ext": ext, "handover": handover, "takeover": takeover, "kind": kind, "start": now,
                               "status": 2})
        return 0

    def _transfer_customer(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self._transfer(body, "onjob")

    def _resigned_transfer_customer(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if "transfer_success_msg" in body:
            return {"errcode": 40058, "errmsg": "resigned transfers take no transfer_success_msg"}
        return self._transfer(body, "resigned")

    def _settle(self) -> None:
        """Transfers whose 24 hours have passed complete (or end as scripted)."""
        now = int(unix_time(self.clock))
        for t in self.transfers:
            if t["status"] != 2 or now < t["start"] + DAY:
                continue
            t["status"] = self._outcomes.pop(t["ext"], 1)
            if t["status"] == 1:
                old = self.relations.get((t["handover"], t["ext"]), {})
                self.unrelate(t["handover"], t["ext"])
                self.relate(t["takeover"], t["ext"], remark=old.get("remark", ""), add_way=old.get("add_way", 0),
                            state=old.get("state", ""))
            elif t["status"] == 3 and t["kind"] == "resigned":
                self.unrelate(t["handover"], t["ext"])

    def _result(self, body: dict[str, Any], kind: str) -> dict[str, Any]:
        self._settle()
        found = [{"external_userid": t["ext"], "status": t["status"], "takeover_time": t["start"] + DAY}
                 for t in self.transfers if t["kind"] == kind and t["handover"] == body.get("handover_userid")
                 and t["takeover"] == body.get("takeover_userid")]
        start = int(body.get("cursor") or 0)
        nxt = start + self.result_page
        return {"customer": found[start:nxt], "next_cursor": str(nxt) if nxt < len(found) else ""}

    def _transfer_result(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self._result(body, "onjob")

    def _resigned_transfer_result(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self._result(body, "resigned")

    def _get_unassigned_list(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        size = int(body.get("page_size") or 1000)
        if not 1 <= size <= 1000:
            return {"errcode": 40058, "errmsg": "page_size: at most 1000"}
        items = [{"handover_userid": m, "external_userid": e, "dimission_time": self.members[m]["resigned_at"]}
                 for (m, e) in sorted(self.relations) if (self.members.get(m) or {}).get("resigned_at")]
        start = int(body.get("cursor") or 0)
        nxt = start + size
        last = nxt >= len(items)
        return {"info": items[start:nxt], "is_last": last, "next_cursor": "" if last else str(nxt)}


class FakeWeComGroups(FakeWeComScrm):
    """:class:`FakeWeComScrm` with customer groups, join ways and welcome templates
    (wecom-scrm reference §2.2, §3, §4):

    * ``groupchat/list`` needs ``limit`` 1-1000 and answers 81017 without an
      ``owner_filter`` (the app sees more than 1000 people), at most 100 owners;
    * ``groupchat/get`` returns members with ``type``, ``join_scene``, ``invitor``,
      ``state`` and ``name`` (only with ``need_name=1``) and the ``member_version``,
      which :meth:`join` / :meth:`quit` change;
    * ``groupchat/transfer`` answers 90500 per chat whose owner has not resigned and
      ``onjob_transfer`` 90501 for a group that is not a customer group;
    * join ways keep at most 5 groups and a ``state`` of at most 30 characters; the
      101st welcome template answers 41055; a welcome text over 3000 bytes 40058.
    """

    def __init__(self, corp_id: str = "wwcorp", secret: str = "s3cret", *, clock: Clock | None = None) -> None:
        super().__init__(corp_id, secret, clock=clock)
        self.groups: dict[str, dict[str, Any]] = {}
        self.join_ways: dict[str, dict[str, Any]] = {}
        self.templates: dict[str, dict[str, Any]] = {}

    # -- scripting -------------------------------------------------------------------------------------
    def add_group(self, chat_id: str, owner: str, *, name: str = "", customer_group: bool = True) -> None:
        if owner not in self.members:
            self.add_member(owner)
        self.groups[chat_id] = {"chat_id": chat_id, "name": name or chat_id, "owner": owner, "notice": "",
                                "create_time": int(unix_time(self.clock)), "admin_list": [], "member_list": [],
                                "member_version": "v0", "customer_group": customer_group, "version": 0}
        self.join(chat_id, [owner], type=1)

    def join(self, chat_id: str, member_ids: list[str], *, type: int = 2, join_scene: int = 3, state: str = "",
             invitor: str | None = None) -> str:
        """Members join; returns the new member version."""
        group = self.groups[chat_id]
        for mid in member_ids:
            item: dict[str, Any] = {"userid": mid, "type": type, "join_time": int(unix_time(self.clock)),
                                    "join_scene": join_scene, "group_nickname": "", "name": f"name-{mid}"}
            if invitor:
                item["invitor"] = {"userid": invitor}
            if state:
                item["state"] = state
            group["member_list"].append(item)
        return self._bump(group)

    def quit(self, chat_id: str, member_ids: list[str]) -> str:
        group = self.groups[chat_id]
        group["member_list"] = [m for m in group["member_list"] if m["userid"] not in member_ids]
        return self._bump(group)

    @staticmethod
    def _bump(group: dict[str, Any]) -> str:
        group["version"] += 1
        group["member_version"] = f"v{group['version']}"
        return str(group["member_version"])

    # -- groups ---------------------------------------------------------------------------------------------
    def _groupchat_list(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        limit = body.get("limit")
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            return {"errcode": 40058, "errmsg": "limit: 1-1000, required"}
        owners = (body.get("owner_filter") or {}).get("userid_list")
        if not owners:
            return {"errcode": 81017, "errmsg": "too many people in the visible range: pass owner_filter"}
        if len(owners) > 100:
            return {"errcode": 40058, "errmsg": "owner_filter.userid_list: at most 100"}
        found = [{"chat_id": c, "status": 0} for c, g in sorted(self.groups.items()) if g["owner"] in owners]
        start = int(body.get("cursor") or 0)
        nxt = start + limit
        return {"group_chat_list": found[start:nxt], "next_cursor": str(nxt) if nxt < len(found) else ""}

    def _groupchat_get(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        group = self.groups.get(str(body.get("chat_id")))
        if group is None:
            return {"errcode": 49008, "errmsg": "chat not found or dismissed"}
        members = [{k: v for k, v in m.items() if k != "name" or body.get("need_name") == 1}
                   for m in group["member_list"]]
        fields = ("chat_id", "name", "owner", "notice", "create_time", "admin_list", "member_version")
        return {"group_chat": {**{k: group[k] for k in fields}, "member_list": members}}

    def _group_transfer(self, body: dict[str, Any], resigned: bool) -> dict[str, Any]:
        ids = body.get("chat_id_list")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            return {"errcode": 40058, "errmsg": "chat_id_list: 1-100"}
        failed = []
        for chat_id in ids:
            group = self.groups.get(chat_id)
            owner = (self.members.get(group["owner"]) or {}) if group else {}
            if group is None:
                code = 49008
            elif not group["customer_group"]:
                code = 90501
            elif resigned and not owner.get("resigned_at"):
                code = 90500
            elif not resigned and owner.get("resigned_at"):
                code = 90502
            elif group["owner"] == body.get("new_owner"):
                code = 90504
            else:
                group["owner"] = body.get("new_owner")
                continue
            failed.append({"chat_id": chat_id, "errcode": code, "errmsg": f"failed {code}"})
        return {"failed_chat_list": failed}

    def _groupchat_transfer(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self._group_transfer(body, resigned=True)

    def _groupchat_onjob_transfer(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self._group_transfer(body, resigned=False)

    # -- join ways and welcome templates --------------------------------------------------------------------------
    def _check_join_way(self, body: dict[str, Any]) -> dict[str, Any] | None:
        if body.get("scene") not in (1, 2):
            return {"errcode": 40058, "errmsg": "scene: 1 or 2"}
        if not 1 <= len(body.get("chat_id_list") or []) <= 5:
            return {"errcode": 40058, "errmsg": "chat_id_list: 1-5"}
        if len(str(body.get("state") or "")) > 30 or len(str(body.get("room_base_name") or "")) > 40:
            return {"errcode": 40058, "errmsg": "state <= 30, room_base_name <= 40 characters"}
        return None

    def _groupchat_add_join_way(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        refused = self._check_join_way(body)
        if refused:
            return refused
        config_id = f"jw{len(self.join_ways) + 1}"
        self.join_ways[config_id] = {**body, "remark": str(body.get("remark") or "")[:30]}
        return {"config_id": config_id}

    def _groupchat_get_join_way(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        way = self.join_ways.get(str(body.get("config_id")))
        if way is None:
            return {"errcode": 40058, "errmsg": "invalid config_id"}
        qr = {"qr_code": f"https://wework.qpic.cn/fake/{body['config_id']}.png"} if way["scene"] == 2 else {}
        return {"join_way": {"config_id": body["config_id"], **way, **qr}}

    def _groupchat_update_join_way(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        config_id = str(body.get("config_id"))
        if config_id not in self.join_ways:
            return {"errcode": 40058, "errmsg": "invalid config_id"}
        refused = self._check_join_way(body)
        if refused:
            return refused
        # WeCom overwrites the whole configuration: what is not sent is cleared.
        self.join_ways[config_id] = {k: v for k, v in body.items() if k != "config_id"}
        return {}

    def _groupchat_del_join_way(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self.join_ways.pop(str(body.get("config_id")), None)
        return {}

    def _group_welcome_template_add(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        text = str((body.get("text") or {}).get("content") or "")
        if len(text.encode("utf-8")) > 3000:
            return {"errcode": 40058, "errmsg": "text.content: at most 3000 bytes"}
        if not text and not any(body.get(k) for k in ("image", "link", "miniprogram", "file", "video")):
            return {"errcode": 40058, "errmsg": "everything is empty"}
        if len(self.templates) >= 100:
            return {"errcode": 41055, "errmsg": "group welcome template count reached the limit"}
        template_id = f"tpl{len(self.templates) + 1}"
        self.templates[template_id] = body
        return {"template_id": template_id}

    # -- group mass messages (客户群群发) ----------------------------------------------------------------
    def _add_msg_template(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("chat_type") != "group":
            return super()._add_msg_template(request, body)
        chats = body.get("chat_id_list") or []
        text = str((body.get("text") or {}).get("content") or "")
        if not body.get("sender"):
            return {"errcode": 40058, "errmsg": "sender is required for chat_type group"}
        if len(chats) > 2000 or len(text.encode("utf-8")) > 4000 or len(body.get("attachments") or []) > 9:
            return {"errcode": 40058, "errmsg": "chat_id_list <= 2000, text <= 4000 bytes, attachments <= 9"}
        owned = [c for c in chats if (self.groups.get(c) or {}).get("owner") == body["sender"]]
        if not owned:
            return {"errcode": 41048, "errmsg": "no sendable customer group"}
        msgid = f"msg{next(self._ids)}"
        self.mass_sends.append({**body, "msgid": msgid, "create_time": int(unix_time(self.clock)),
                                "results": dict.fromkeys(owned, 0), "reminders": 0})
        return {"msgid": msgid, "fail_list": []}

    def confirm(self, msgid: str, *, statuses: dict[str, int] | None = None) -> None:
        """The sender confirms a group mass message: each group's status becomes 1 (sent)
        unless ``statuses`` says otherwise (2 not a friend, 3 receive cap reached)."""
        sent = next(m for m in self.mass_sends if m["msgid"] == msgid)
        for chat in sent["results"]:
            sent["results"][chat] = (statuses or {}).get(chat, 1)
        sent["confirmed_at"] = int(unix_time(self.clock))

    def _get_groupmsg_task(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        sent = self._mass_send(body)
        if sent is None or sent.get("chat_type") != "group":
            return super()._get_groupmsg_task(request, body)
        status = 2 if "confirmed_at" in sent else 0
        return self._page([{"userid": sent["sender"], "status": status,
                            **({"send_time": sent["confirmed_at"]} if status else {})}], "task_list", body, 1000)

    def _get_groupmsg_send_result(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        sent = self._mass_send(body)
        if sent is None or sent.get("chat_type") != "group":
            return super()._get_groupmsg_send_result(request, body)
        rows = [{"chat_id": c, "userid": sent["sender"], "status": s,
                 **({"send_time": sent["confirmed_at"]} if s == 1 else {})} for c, s in sent["results"].items()]
        return self._page(rows, "send_list", body, 1000)

    def _remind_groupmsg_send(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        sent = self._mass_send(body)
        if sent is None:
            return {"errcode": 41047, "errmsg": "invalid msgid"}
        sent["reminders"] = sent.get("reminders", 0) + 1
        return {}
