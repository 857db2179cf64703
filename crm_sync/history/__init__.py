"""The client history store: clients, phones, orders, the timeline, NPS answers and tasks,
and the reads built on them (client view, retention, the planner's SQL, the timeline feed)."""
