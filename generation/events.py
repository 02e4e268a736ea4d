"""What generation tells whoever listens (the webhooks app). Sent inside the transaction of the
change; receivers only record what to do after it."""

from django.dispatch import Signal

# asset=GeneratedAsset, from_status=str, to_status=str: sent by transitions.asset_transition
asset_moved = Signal()
