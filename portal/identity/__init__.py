"""Sign-in, sign-out, the role switcher and the demo sign-in (passkeys arrive with the identity issue)."""
