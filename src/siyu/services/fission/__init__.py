"""Fission (裂变) tools on the referral graph: 任务宝 invite tasks, 拼团 group
buys, 分销 commissions, fraud guards and metrics. Reached through
``ws.referrals`` (``.tasks``, ``.group_buys``, ``.commissions``, ``.fraud``)."""
