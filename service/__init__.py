"""sidebar-widgets: live Persian sidebar widgets served as JSON and RTL HTML fragments."""
