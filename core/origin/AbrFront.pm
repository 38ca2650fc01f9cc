# The nginx front's segment and token checks (nginx's embedded Perl, ngx_http_perl_module;
# core/origin/front.py writes the config that loads it).
#
# nginx finds which asset a playback id opens by a link the API made for the current
# 5-second window (core/origin/front_index.py): {index}/$abr_bucket/p/{id} for a public id,
# .../s/{id} for a signed one; a request with a `token` looks under s/, one without under p/
# ($abr_ns). A public id's whole segment needs no Perl (a map in the config); for anything
# else, here: the file to send below the index, or "" to hand the request to the API (which
# it also gets when the link is not there). Under s/, the request needs an HS256 JWT made
# with one of the API's signing keys (ABR_FRONT_KEYS, {kid: secret}), whose `sub` is this id
# and whose `exp` is still ahead: the rules of core/services/playback.py `verify_token`, or
# stricter (any other claim or header field, and the API decides). Refusing is always safe:
# the API then answers with its own 403.
#
# Why Perl: the interpreter lives as long as the nginx worker, so a token checked once is
# remembered (%CHECKED) and every later segment of that viewer costs a hash lookup and a
# subtraction. njs 0.7 (Debian 12's) starts a fresh VM for every request and keeps nothing:
# a signed segment cost ~180k instructions there, ~12k here (callgrind on one worker; a bare
# whole-file answer is ~16k), and a call that does nothing ~61k in njs.

package AbrFront;

use strict;
use warnings;

use B ();
use Digest::SHA qw(hmac_sha256 sha256);
use JSON::PP ();
use MIME::Base64 qw(decode_base64url encode_base64url);

my $MAX_TOKEN_CHARS = 2048;
my $SEGMENT_MAX_AGE = 31536000;  # core/origin/policy.py SEGMENT_MAX_AGE
my $MAX_CHECKED = 16384;  # tokens remembered per worker; all forgotten when full
my %HEADER_FIELDS = (alg => 1, kid => 1, typ => 1);
my %CLAIM_FIELDS = (exp => 1, sub => 1);
# core/origin/conditional.py `_RANGE`, with numbers short enough for Perl's integers.
my $SINGLE_RANGE = qr/^\s*bytes\s*=\s*(?:(\d{1,15})\s*-\s*(\d{0,15})|-\s*(\d{1,15}))\s*$/i;
my $JSON = JSON::PP->new->utf8;

my %KEYS;     # kid -> secret, read once from the environment when nginx loads this file
my %HEADERS;  # the header part sign_token writes (PyJWT: alg, kid, typ, no spaces) -> kid
my %CHECKED;  # token -> [playback id, exp]: tokens whose signature and claims checked out
my ($request, $allowance) = ('', 0);  # this request's verdict (`allowance`), worked out once

sub _read_keys {
    my $keys = eval { $JSON->decode($ENV{ABR_FRONT_KEYS} || '{}') };
    %KEYS = ();
    if (ref $keys eq 'HASH') {
        for my $kid (grep { defined $keys->{$_} && !ref $keys->{$_} } keys %$keys) {
            my $secret = $keys->{$kid};
            utf8::encode($secret);  # the HMAC key is the secret's UTF-8 bytes, as Python's
            $KEYS{$kid} = $secret;
        }
    }
    # Only a kid PyJWT writes as itself (printable ASCII, nothing JSON escapes) has a header to compare
    # as text; any other is decoded like any other header.
    %HEADERS = map { (encode_base64url('{"alg":"HS256","kid":"' . $_ . '","typ":"JWT"}') => $_) }
        grep { /^[\x20-\x7e]+\z/ && !/["\\]/ } keys %KEYS;
}

# Scalars as JSON::PP decodes them: a string, or an integer written as one (1e10 and 1.0 are
# numbers Python reads as floats, which verify_token refuses).
sub _is_string {
    my ($value) = @_;
    return defined $value && !ref $value && (B::svref_2object(\$value)->FLAGS & B::SVf_POK());
}

sub _is_integer {
    my ($value) = @_;
    return 0 if !defined $value || ref $value;
    my $flags = B::svref_2object(\$value)->FLAGS;
    return ($flags & B::SVf_IOK()) && !($flags & (B::SVf_POK() | B::SVf_NOK()));
}

# A JSON object of strings and integers written as unpadded base64url, exactly, or undef. What
# encodes back to other characters is refused (Perl and Python each skip characters they do not
# decode, and not alike), and so is any other value: JSON::PP reads 1e10 as the integer Python
# reads as a float (which verify_token refuses), so no number here may have a point or exponent.
sub _decode_part {
    my ($part) = @_;
    return undef if $part eq '' || $part =~ /[^A-Za-z0-9_-]/;
    my $bytes = decode_base64url($part);
    return undef if encode_base64url($bytes) ne $part;
    (my $bare = $bytes) =~ s/"(?:[^"\\]|\\.)*"//g;  # the text outside its strings
    return undef if $bare =~ /[^ \t\r\n{}:,0-9-]/;
    my $value = eval { $JSON->decode($bytes) };
    return ref $value eq 'HASH' ? $value : undef;
}

sub _only_fields {
    my ($value, $allowed) = @_;
    for my $name (keys %$value) {
        return 0 unless $allowed->{$name};
    }
    return 1;
}

# The `kid` of a header that asks for HS256 with one of %KEYS, else undef: sign_token's own
# header by its text, any other decoded and checked field by field.
sub _key_of {
    my ($part) = @_;
    my $kid = $HEADERS{$part};
    return $kid if defined $kid;
    my $header = _decode_part($part);
    return undef unless $header && _only_fields($header, \%HEADER_FIELDS);
    return undef unless _is_string($header->{alg}) && $header->{alg} eq 'HS256' && _is_string($header->{kid});
    return exists $KEYS{$header->{kid}} ? $header->{kid} : undef;
}

# The token's `exp` if it opens `$playback_id` (signature first, then the claims), else 0; the
# caller compares it with the time. Remembered per token once it checks out.
sub token_expiry {
    my ($token, $playback_id) = @_;
    return 0 if !defined $token || length($token) > $MAX_TOKEN_CHARS;
    my $hit = $CHECKED{$token};
    return $hit->[0] eq $playback_id ? $hit->[1] : 0 if $hit;
    my @parts = split /\./, $token, -1;
    return 0 if @parts != 3;
    my $kid = _key_of($parts[0]);
    return 0 unless defined $kid;
    my $signature = encode_base64url(hmac_sha256("$parts[0].$parts[1]", $KEYS{$kid}));
    # Compared through their SHA-256 digests, so that the time taken says nothing about where the
    # strings differ (as hmac.compare_digest).
    return 0 unless sha256($signature) eq sha256($parts[2]);
    my $claims = _decode_part($parts[1]);
    return 0 unless $claims && _only_fields($claims, \%CLAIM_FIELDS);
    my ($sub, $exp) = ($claims->{sub}, $claims->{exp});
    return 0 unless _is_string($sub) && $sub eq $playback_id && _is_integer($exp);
    %CHECKED = () if keys(%CHECKED) >= $MAX_CHECKED;
    $CHECKED{$token} = [$playback_id, $exp];
    return $exp;
}

# Seconds a token still opens `$playback_id` for (exp minus the whole seconds now, as the API),
# 0 when it does not.
sub _seconds_left {
    my ($token, $playback_id) = @_;
    my $exp = token_expiry($token, $playback_id);
    my $left = $exp - time;
    return $left > 0 ? $left : 0;
}

# The token in the query: the only `token` parameter (the API reads the last of several, nginx's
# $arg_token the first: several are refused here), as sent.
sub _query_token {
    my ($r) = @_;
    my @tokens = ($r->args // '') =~ /(?:^|&)token=([^&]*)/g;
    return @tokens == 1 ? $tokens[0] : undef;
}

# This request's seconds (undef: a public id; 0: refused), worked out once per request: a signed
# segment asks for its file and its Cache-Control, a signed manifest whether it may be kept and
# its Cache-Control.
sub allowance {
    my ($r) = @_;
    return undef if $r->variable('abr_ns') ne 's';
    my $this = $r->variable('connection') . ':' . $r->variable('connection_requests');
    return $allowance if $this eq $request;
    ($request, $allowance) = ($this, _seconds_left(_query_token($r), $r->variable('abr_pid')));
    return $allowance;
}

# Whether nginx's answer to this Range is the API's: a single satisfiable range, or none. The
# rest (a range past the end: the API's 416 has its JSON body; several ranges or junk: the API
# sends the whole object, nginx would send multipart or 416) goes to the API.
sub _range_answered_alike {
    my ($r, $path) = @_;
    my $header = $r->header_in('Range');
    return 1 unless defined $header;
    my @m = $header =~ $SINGLE_RANGE or return 0;
    return $m[2] > 0 if defined $m[2];
    my $first = $m[0];
    return 0 if $m[1] ne '' && $m[1] < $first;
    return 1 if $first == 0;
    my @stat = stat($r->variable('document_root') . $path);
    return @stat && $first < $stat[7];
}

# The file below the index to send (through the id's link), or "" (the API answers).
sub _file {
    my ($r) = @_;
    my $method = $r->request_method;
    return '' if $method ne 'GET' && $method ne 'HEAD';
    my $seconds = allowance($r);
    return '' if defined $seconds && $seconds == 0;
    my $path = join '/', '', map { $r->variable($_) } qw(abr_bucket abr_ns abr_pid abr_rest);
    return _range_answered_alike($r, $path) ? $path : '';
}

# A signed whole segment's max-age, or "" when its token does not open the id (the API answers).
# Only for a GET or HEAD with no Range and nothing in its query but the token (core/origin/front.py
# sends no other here): one call, the token as nginx read it.
sub _signed_max_age {
    my ($r) = @_;
    my $seconds = _seconds_left($r->variable('arg_token'), $r->variable('abr_pid'));
    return $seconds > 0 ? ($seconds < $SEGMENT_MAX_AGE ? $seconds : $SEGMENT_MAX_AGE) : '';
}

# "1" when a manifest asked with a token must come from the API now, not from nginx's copy:
# another method, or a token the API would refuse.
sub _manifest_uncached {
    my ($r) = @_;
    my $method = $r->request_method;
    return '1' if $method ne 'GET' && $method ne 'HEAD';
    my $seconds = allowance($r);
    return defined $seconds && $seconds == 0 ? '1' : '';
}

# core/origin/policy.py cache_control(Kind.SEGMENT, token_ttl=...), for the answers nginx sends.
sub _cache_control {
    my ($r) = @_;
    my $ttl = allowance($r);
    my $max_age = !defined $ttl || $ttl > $SEGMENT_MAX_AGE ? $SEGMENT_MAX_AGE : $ttl;
    return $max_age > 0 ? "public, max-age=$max_age, immutable" : 'no-store';
}

# A signed manifest nginx kept: core/origin/policy.py cache_control(..., token_ttl=...) for this
# request's token, from the max-age the API gave before the token's cap (X-Abr-Max-Age, api/origin.py
# front_expires). Anything else (a public one, an error's no-store) as the API wrote it.
sub _manifest_cache_control {
    my ($r) = @_;
    my $given = $r->variable('upstream_http_cache_control') // '';
    my $max_age = $r->variable('upstream_http_x_abr_max_age') // '';
    return $given if $r->variable('abr_ns') ne 's' || index($given, 'public') != 0 || $max_age !~ /^[1-9]\d{0,9}$/;
    my $ttl = allowance($r) || 0;
    my $value = $max_age < $ttl ? $max_age : $ttl;
    return $value > 0 ? "public, max-age=$value" : 'no-store';
}

# What nginx calls (perl_set). A Perl error must not fail the request: it is logged, and the answer
# is the one that hands the request to the API (or, for a Cache-Control, forbids caching).
sub _guarded {
    my ($fn, $fallback, $r) = @_;
    my $value = eval { $fn->($r) };
    return $value if defined $value;
    $r->log_error(0, "AbrFront: $@") if $@;
    return $fallback;
}

sub file { return _guarded(\&_file, '', @_) }
sub signed_max_age { return _guarded(\&_signed_max_age, '', @_) }
sub manifest_uncached { return _guarded(\&_manifest_uncached, '1', @_) }
sub cache_control { return _guarded(\&_cache_control, 'no-store', @_) }
sub manifest_cache_control { return _guarded(\&_manifest_cache_control, 'no-store', @_) }

_read_keys();

1;
