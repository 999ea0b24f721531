"""Sign-in, session and sign-out."""
