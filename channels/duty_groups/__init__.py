"""Duty groups: a unit's WeCom, DingTalk and Feishu/Lark group robots as delivery channels."""
