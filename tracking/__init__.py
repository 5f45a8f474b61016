"""Live tracking: courier websocket sessions, GPS validation and batching into the live
courier index (`geo.live`), location history, geofence events and live fan-out to the
customers and restaurants watching an order.

Public interface: none beyond events and channels (docs/EVENTS.md); other packages never
import tracking. The frame formats are in `tracking.messages`."""
