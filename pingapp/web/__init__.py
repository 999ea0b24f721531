"""HTTP plumbing with no app state: the headers pingapp's pages send (`headers`), the
redirect to the app's origin from another loopback name (`loopback`), the request body
limit (`bodylimit`), the client address behind trusted proxies (`clientaddr`), and the
one reader of `WWW-Authenticate` (`challenges`)."""
