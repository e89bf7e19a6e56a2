"""Phase I: find the vehicle, erase logos, badges, plates, mirrors and text."""
