"""The kernels (EMV Contactless Books C-3/C-7 and EMV 4.4 Book 3), one module per part:

- ``kernels``     the kernel table (2, 3, 7) as data;
- ``activation``  the procedure that starts one after Entry Point and picks its path;
- ``common``      GET PROCESSING OPTIONS, READ RECORD, GET DATA, GENERATE AC, dates;
- ``quick_path``  the qPBOC / qVSDC quick path (Kernels 7 and 3);
- ``full_path``   the EMV full path (Book 3, 10.2-10.11);
- ``oda``         offline data authentication on the terminal side (SDA, DDA, fDDA, CDA);
- ``cvm``         CVM List processing (Book 3, 10.5);
- ``issuer``      issuer authentication and issuer scripts (Book 3, 10.9-10.10);
- ``redundancy``  one copy of each card data object per transaction (Book 3, 10.2);
- ``binding``     unsigned copies bound to the signed values (track 2 PAN, fDDA ATC and CTQ,
                  CDA ATC).

Every path returns a :class:`~terminal.outcome.KernelOutcome`; only a card whose data cannot be
used raises (:class:`~terminal.kernel.common.KernelAbort`, END APPLICATION).
"""
