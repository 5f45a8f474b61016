"""Memberships: plans with recurring billing (DashPass / Uber One): plans set by operators, customers'
subscriptions paid with a saved card, renewals charged off-session by a job, dunning, cancellation and
pro-rata refunds, invoices, and the benefits a member gets at quote time.

Other packages use `MembershipsService.benefits` (orders' pricing, through a port the composition root
fills) and the event payloads in `memberships.event_types`.
"""
