// Feedback reports shaped like the ones providers send, for the feedback
// tests. LF line ends here; tests convert to CRLF where it matters
// (parse_report() takes both).
//
// Sources of the shapes (the addresses, ids and IPs are ours):
//  - kRfc5965Simple, kRfc5965Full: RFC 5965 Appendix B.1 ("Simple Example")
//    and B.2 ("Example with Optional Fields").
//  - kAol: AOL's SComp report (User-Agent "AOL SComp", Version 0.1,
//    Received-Date, Redacted-Address, recipient redacted in the copy), as
//    kept in mailio/go-mailio-mailgun-smtp-handler test_data/rfc822.eml and
//    MantaMTA's FeedbackLoop tests.
//  - kYahoo: Yahoo's Complaint Feedback Loop (User-Agent
//    "Yahoo!-Mail-Feedback/2.0", Version 0.1, Original-Rcpt-To, the copy
//    "with full headers, nothing munged or redacted": Yahoo's CFL FAQ,
//    help.yahoo.com/kb/postmaster/SLN26007).
//  - kJmrpArf: Microsoft JMRP in ARF, which no longer names the recipient
//    in the feedback-report part; the copy carries X-HmXmrOriginalRecipient
//    (suped.com, "Did Microsoft change the JMRP spam complaint report
//    format?").
//  - kJmrpLegacy: JMRP's older "RFC822 Attachment" format, sent from
//    staff@hotmail.com with no feedback-report part (MSN Hotmail JMRPP FAQ).
#pragma once

namespace reports {

// Our message as the provider received it: what the reports quote.
inline constexpr const char* kOurId = "0005f1e2d3c4b5a60000002a1b2c3d4e";

inline constexpr const char* kRfc5965Simple = R"(From: <abusedesk@example.com>
Date: Thu, 8 Mar 2005 17:40:36 EDT
Subject: FW: Earn money
To: <abuse@example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.  For more information
about this format please see http://www.mipassoc.org/arf/.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

Received: from mailserver.example.net
        (mailserver.example.net [192.0.2.1])
        by example.com with ESMTP id M63d4137594e46;
        Thu, 08 Mar 2005 14:00:00 -0400
From: <somespammer@example.net>
To: <Undisclosed Recipients>
Subject: Earn money
MIME-Version: 1.0
Content-type: text/plain
Message-ID: 8787KJKJ3K4J3K4J3K4J3.mail@example.net
Date: Thu, 02 Sep 2004 12:31:03 -0500

Spam Spam Spam
Spam Spam Spam
Spam Spam Spam
Spam Spam Spam
--part1_13d.2e68ed54_boundary--
)";

inline constexpr const char* kRfc5965Full = R"(From: <abusedesk@example.com>
Date: Thu, 8 Mar 2005 17:40:36 EDT
Subject: FW: Earn money
To: <abuse@example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.  For more information
about this format please see http://www.mipassoc.org/arf/.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <somespammer@example.net>
Original-Rcpt-To: <user@example.com>
Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT
Reporting-MTA: dns; mail.example.com
Source-IP: 192.0.2.1
Authentication-Results: mail.example.com;
               spf=fail smtp.mail=somespammer@example.com
Reported-Domain: example.net
Reported-Uri: http://example.net/earn_money.html
Reported-Uri: mailto:user@example.com
Removal-Recipient: user@example.com

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

From: <somespammer@example.net>
Received: from mailserver.example.net (mailserver.example.net
        [192.0.2.1]) by example.com with ESMTP id M63d4137594e46;
        Thu, 08 Mar 2005 14:00:00 -0400
To: <Undisclosed Recipients>
Subject: Earn money
MIME-Version: 1.0
Content-type: text/plain
Message-ID: 8787KJKJ3K4J3K4J3K4J3.mail@example.net
Date: Thu, 02 Sep 2004 12:31:03 -0500

Spam Spam Spam
Spam Spam Spam
Spam Spam Spam
Spam Spam Spam
--part1_13d.2e68ed54_boundary--
)";

inline constexpr const char* kAol = R"(Return-Path: <scomp@aol.net>
Received: from omr-m23.mx.aol.com (omr-m23.mx.aol.com [64.12.136.131])
	by mx.mta.example.com with ESMTP id 5311214E62F2
	for <fbl@mta.example.com>; Mon, 13 Sep 2010 17:34:38 -0500 (CDT)
To: fbl@mta.example.com
From: scomp@aol.net
Date: Mon, 13 Sep 2010 18:34:19 EDT
Subject: Email Feedback Report for IP 192.0.2.10
MIME-Version: 1.0
X-Loop: scomp
Message-ID: <201009131834.7e024c8ea6ecae@omr-m23.mx.aol.com>
Content-Type: multipart/report; report-type=feedback-report; boundary="boundary-1138-29572-2659438-3348"

--boundary-1138-29572-2659438-3348
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message with the message-id of 1283450583.6569@news.shop.example received from IP address 192.0.2.10 on Thu,  2 Sep 2010 15:12:11 -0400 (EDT)

For information, please review the top portion of the following page:
http://postmaster.aol.com/tools/fbl.html


--boundary-1138-29572-2659438-3348
Content-Disposition: inline
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: AOL SComp
Version: 0.1
Received-Date: Thu,  2 Sep 2010 15:12:11 -0400 (EDT)
Source-IP: 192.0.2.10
Reported-Domain: o10.mta.example.com
Redacted-Address: redacted
Redacted-Address: redacted@


--boundary-1138-29572-2659438-3348
Content-Type: message/rfc822
Content-Disposition: inline

Return-Path: <bounces@shop.example>
Received: from o10.mta.example.com (o10.mta.example.com [192.0.2.10])
	by mtain-di06.r1000.mx.aol.com (Internet Inbound) with SMTP id B984D3800C101
	for <redacted>; Thu,  2 Sep 2010 15:12:11 -0400 (EDT)
Content-Type: text/plain; charset="UTF-8"
MIME-Version: 1.0
From: Shop <news@shop.example>
To: redacted@aol.com
Subject: Great deals
Message-ID: <1283450583.6569@news.shop.example>
X-MTA-Message-ID: 0005F1E2D3C4B5A60000002A1B2C3D4E
Date: Thu, 02 Sep 2010 11:03:03 -0700 (PDT)
x-aol-global-disposition: G
X-AOL-IP: 192.0.2.10
Content-Transfer-Encoding: 7bit

Deals!

--boundary-1138-29572-2659438-3348--
)";

inline constexpr const char* kYahoo =
    R"(From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>
To: fbl@mta.example.com
Subject: FW: Great deals
Date: Sun, 24 Feb 2013 13:44:08 -0800
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="----=_Part_47151_29770280"

------=_Part_47151_29770280
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message from shop.example on Sun, 24 Feb 2013 13:44:08 PST

------=_Part_47151_29770280
Content-Type: message/feedback-report
Content-Transfer-Encoding: 7bit
Content-Disposition: inline

Feedback-Type: abuse
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 0.1
Original-Mail-From: <bounces@shop.example>
Original-Rcpt-To: Some.User@yahoo.example
Received-Date: Sun, 24 Feb 2013 13:44:08 PST
Reported-Domain: shop.example
Authentication-Results: mta1126.mail.ir2.yahoo.com  from=shop.example; domainkeys=neutral (no sig);  from=shop.example; dkim=pass (ok)

------=_Part_47151_29770280
Content-Type: message/rfc822
Content-Disposition: inline

Received: from 192.0.2.11 (EHLO o11.mta.example.com) (192.0.2.11)
  by mta1126.mail.ir2.yahoo.com with SMTP; Sun, 24 Feb 2013 21:44:08 +0000
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=shop.example; s=s1;
	h=from:to:subject:message-id:date; bh=abc=; b=def=
From: Shop <news@shop.example>
To: Some User <some.user@yahoo.example>, other@yahoo.example
Subject: Great deals
Message-ID: <deals-2013-02@shop.example>
X-MTA-Message-ID: 0005f1e2d3c4b5a60000002a1b2c3d4e
Date: Sun, 24 Feb 2013 13:40:00 -0800

Deals!
------=_Part_47151_29770280--
)";

inline constexpr const char* kJmrpArf = R"(From: staff@hotmail.com
To: fbl@mta.example.com
Subject: complaint about message from 192.0.2.12
Date: Tue, 03 Mar 2026 10:15:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
	boundary="----=_NextPart_000_0001_01D0A2B3.C4D5E6F0"

------=_NextPart_000_0001_01D0A2B3.C4D5E6F0
Content-Type: text/plain; charset="us-ascii"

This is an email abuse report for an email message received from IP 192.0.2.12.

------=_NextPart_000_0001_01D0A2B3.C4D5E6F0
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Microsoft JMRP
Version: 1.0
Arrival-Date: Tue, 03 Mar 2026 09:59:58 +0000
Source-IP: 192.0.2.12

------=_NextPart_000_0001_01D0A2B3.C4D5E6F0
Content-Type: message/rfc822

X-HmXmrOriginalRecipient: <complainer@outlook.example>
Received: from o12.mta.example.com (192.0.2.12) by MW2NAM.outlook.example
 with Microsoft SMTP Server; Tue, 3 Mar 2026 09:59:58 +0000
From: Shop <news@shop.example>
To: <complainer@outlook.example>
Subject: Great deals
Message-ID: <deals-2026-03@shop.example>
X-MTA-Message-ID: 0005f1e2d3c4b5a60000002a1b2c3d4e

Deals!
------=_NextPart_000_0001_01D0A2B3.C4D5E6F0--
)";

inline constexpr const char* kJmrpLegacy = R"(From: staff@hotmail.com
To: fbl@mta.example.com
Subject: complaint about message from 192.0.2.12
Date: Tue, 03 Mar 2026 10:15:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="--1234567890abcdef"

----1234567890abcdef
Content-Type: text/plain; charset="us-ascii"

This is a complaint from a Windows Live Hotmail user.

----1234567890abcdef
Content-Type: message/rfc822
Content-Disposition: attachment

X-HmXmrOriginalRecipient: <complainer@hotmail.example>
X-SID-PRA: news@shop.example
From: Shop <news@shop.example>
To: <complainer@hotmail.example>
Subject: Great deals
Message-ID: <deals-2026-03@shop.example>

Deals!
----1234567890abcdef--
)";

}  // namespace reports
